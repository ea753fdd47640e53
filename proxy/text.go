package proxy

import "unicode/utf8"

// Truncate cuts untrusted text (a provider message, an error, an id) to at
// most n bytes, on a UTF-8 boundary, marking the cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
