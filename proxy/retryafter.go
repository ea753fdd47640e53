package proxy

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter caps a Retry-After: a larger one is taken as a day (more
// than any wait either direction allows anyway).
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses a Retry-After header, as the provider sends it to
// the outbound side and the app to the inbound side: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3). A date in the past means now; anything
// above MaxRetryAfter is MaxRetryAfter. ok is false for an absent or
// malformed value.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, ok := parseDigits(v); ok {
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	switch d := t.Sub(now); {
	case d <= 0:
		return 0, true
	case d > MaxRetryAfter:
		return MaxRetryAfter, true
	default:
		return d, true
	}
}

// parseDigits parses a non-negative decimal without sign, capped at a day.
func parseDigits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 86400 {
			n = n*10 + int64(c-'0')
		}
	}
	if n > 86400 {
		n = 86400
	}
	return n, true
}
