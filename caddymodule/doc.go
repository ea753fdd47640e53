// Package caddymodule adapts qrphgate's engine (proxy, policy, crypto,
// sandbox, store) to Caddy: module structs, Provision/Validate/Cleanup,
// Caddyfile parsing, the metrics handler and the admin API routes. It holds
// no payment logic of its own.
package caddymodule
