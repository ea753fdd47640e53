// Package proxy holds what qrphgate's two directions share: the JSON error
// answer and its codes, body reading, backoff, media-type checks and the
// header names. The outbound client lives in proxy/outbound, the inbound
// webhook pipeline in proxy/inbound; neither imports the other. Like every
// engine package it is plain Go with no Caddy import.
package proxy
