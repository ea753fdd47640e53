// Package qrphgate is the root of the qrphgate Caddy build. Importing it
// (as cmd/qrphgate does, and as `xcaddy build --with
// github.com/qrphgate/qrphgate=.` does) registers every qrphgate module.
package qrphgate

import (
	// Registers modulus_api, modulus_webhook, modulus_sandbox,
	// modulus_metrics and the admin.api.modulus routes.
	_ "github.com/qrphgate/qrphgate/caddymodule"
)
