// Package preflight is the engine of the go-live checklist (`qrphgate
// modulus preflight`): the verdict of each check (ok, warn or fail, with
// its reason and its fix), the report with its text and JSON forms, and the
// checks that need no Caddy: a spool directory's write and fsync, the
// system clock's synchronisation, the admin listener's exposure, a Redis
// server's persistence, a webhook site's certificate and TLS version, the
// provider's webhook registrations and the test payment's amount.
// caddymodule reads the configuration and runs the checks.
//
// It is plain Go: it imports nothing from Caddy.
package preflight
