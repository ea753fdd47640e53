package preflight

import (
	"math"
	"time"
)

// FormatDuration renders a time a check measured with the precision its
// size deserves: 10 ms from a second up, 10 µs from a millisecond, 10 ns
// below (a loopback round trip or a cached fsync takes microseconds, and
// must not print as "0s"); "0s" only for nothing at all.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond).String()
	}
	return d.String()
}

// elapsedMS is a measured time in milliseconds for the JSON report: to
// 0.01 ms from a millisecond up, to 0.0001 ms (100 ns) below, so that a
// time under a millisecond keeps its size rather than reading 0.
func elapsedMS(d time.Duration) float64 {
	ms := float64(d) / float64(time.Millisecond)
	if d >= time.Millisecond {
		return math.Round(ms*100) / 100
	}
	return math.Round(ms*1e4) / 1e4
}
