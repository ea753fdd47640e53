package proxy

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter (a uniformly random
// wait in [0, min(Max, Base·2^attempt))), which spreads retries from many
// clients instead of synchronising them.
type Backoff struct {
	// Base is the ceiling of the first wait (attempt 0).
	Base time.Duration
	// Max caps the ceiling.
	Max time.Duration
	// Rand returns a value in [0, 1); nil means math/rand/v2. Tests fix it.
	Rand func() float64
}

// Ceiling is the largest wait for attempt (0-based).
func (b Backoff) Ceiling(attempt int) time.Duration {
	c := b.Base
	for i := 0; i < attempt && c < b.Max; i++ {
		c *= 2
	}
	if c > b.Max {
		c = b.Max
	}
	return c
}

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(b.Ceiling(attempt)))
}
