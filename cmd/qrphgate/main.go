// Command qrphgate is Caddy with the standard modules plus qrphgate's: run it
// exactly like caddy (qrphgate run, adapt, validate, version, list-modules).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/qrphgate/qrphgate"
)

func main() {
	caddycmd.Main()
}
