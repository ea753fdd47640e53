// Package sandbox is a simulator of the Modulus Labs QR Ph API and its
// webhooks, faithful to the provider's documentation: Basic auth with the
// secret key, JWE (A256KW + A256CBC-HS512) request and answer tokens, the
// create-QR validation and provider-style error objects, {id, qrBody} where
// qrBody is a PNG of a real EMVCo QR Ph payload, the webhook management API
// in memory, the simulate call that sends encrypted webhooks on the
// provider's retry schedule, the provider's rate limit, fault knobs for
// tests, a demo inbox and a small web page that shows the whole loop.
//
// It is plain Go: it imports nothing from Caddy, and of qrphgate only
// policy, crypto and internal helpers. caddymodule adapts it as
// http.handlers.modulus_sandbox.
package sandbox
