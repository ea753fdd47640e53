// Package proxy is qrphgate's engine between the app and Modulus Labs: the
// outbound client (validation, pacing, retries, circuit breaking,
// idempotency) and the inbound webhook pipeline (verification, spooling,
// delivery). It is plain Go: it imports policy, crypto and store, and
// nothing from Caddy, and is tested with httptest.
package proxy
