package sandbox

import (
	"time"

	"github.com/qrphgate/qrphgate/policy"
)

// slidingLog is an exact sliding-window limiter: it keeps the time of every
// admitted request and admits another only while fewer than Requests fall
// in the last Period. This is the strictest reading of "100 requests per
// minute", so a client that passes the simulator passes any coarser
// provider-side counter too. Refused requests are not counted.
type slidingLog struct {
	times []time.Time // admitted, oldest first
}

// allow admits a request at now under rl, or says how long until one more
// would be admitted.
func (l *slidingLog) allow(now time.Time, rl policy.RateLimit) (bool, time.Duration) {
	l.prune(now, rl.Period)
	if len(l.times) < rl.Requests {
		l.times = append(l.times, now)
		return true, 0
	}
	// The request that must leave the window first for one more to fit
	// (more than Requests may be logged if the limit was lowered on reload).
	leaves := l.times[len(l.times)-rl.Requests].Add(rl.Period)
	return false, leaves.Sub(now)
}

// used counts admitted requests in the window ending at now.
func (l *slidingLog) used(now time.Time, period time.Duration) int {
	l.prune(now, period)
	return len(l.times)
}

func (l *slidingLog) prune(now time.Time, period time.Duration) {
	cut := 0
	for cut < len(l.times) && !l.times[cut].After(now.Add(-period)) {
		cut++
	}
	if cut > 0 {
		l.times = append(l.times[:0], l.times[cut:]...)
	}
}
