package proxy

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"0":                                0,
		"7":                                7 * time.Second,
		" 120 ":                            2 * time.Minute,
		"99999999999999999999":             24 * time.Hour,
		"Thu, 15 Jan 2026 10:30:05 GMT":    5 * time.Second,
		"Thu, 15 Jan 2026 10:29:00 GMT":    0,
		"Thursday, 15-Jan-26 10:31:00 GMT": time.Minute,
	} {
		got, ok := ParseRetryAfter(v, now)
		if !ok || got != want {
			t.Errorf("%q: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "1.5", "soon", "Thu, 15 Jan 2026"} {
		if _, ok := ParseRetryAfter(v, now); ok {
			t.Errorf("%q accepted", v)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Thu, 15 Jan 2026 10:30:05 GMT", "-1", "1e9", "99999999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if ok && (d < 0 || d > MaxRetryAfter) {
			t.Fatalf("%q gave %v", v, d)
		}
	})
}
