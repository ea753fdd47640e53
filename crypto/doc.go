// Package crypto implements the compact JWE profile used by Modulus Labs
// (alg A256KW, enc A256CBC-HS512) on top of go-jose v4, key loading and
// rotation, and the redaction helpers every log line goes through.
//
// It is plain Go: it imports nothing from Caddy and nothing else of ours.
package crypto
