package outbound

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Pacer admits upstream calls so that no sliding window of the rate limit's
// period ever carries more than its count, however many calls arrive and
// however many replicas share the budget.
//
// The budget (store.RateBudget, an exact sliding log) is the authority: a
// call goes upstream only after its Take was granted. The pacer adds the
// local part: a bounded FIFO queue in which calls wait for a slot instead of
// failing, where only the head of the queue polls the budget, sleeping
// exactly until the budget says the oldest call leaves the window. A call
// that would wait longer than its deadline is refused at once with the time
// the next slot frees up.
//
// Why not a token bucket (golang.org/x/time/rate) or a fixed-window counter:
// a bucket of burst N refilling N per period admits up to 2N in one period,
// and a fixed window admits 2N across its edge. Both would exceed the
// provider's limit; the sliding log cannot.
type Pacer struct {
	budget store.RateBudget
	key    string
	clock  clock.Clock

	// turn has room for one: the caller holding it is the head of the queue.
	// Go serves blocked channel senders in FIFO order.
	turn chan struct{}
	// waiting counts callers queued or holding the turn.
	waiting atomic.Int64
	// nextSlot is when the head expects the next slot (unix nanoseconds;
	// 0 when unknown), used to refuse hopeless waits early and to tell
	// refused callers when to come back.
	nextSlot atomic.Int64
}

// NewPacer returns a Pacer drawing on budget under key (one key per
// provider account, shared by every replica).
func NewPacer(budget store.RateBudget, key string, c clock.Clock) *Pacer {
	if c == nil {
		c = clock.Real()
	}
	return &Pacer{budget: budget, key: key, clock: c, turn: make(chan struct{}, 1)}
}

// Key is the budget key the pacer draws on.
func (p *Pacer) Key() string { return p.key }

// Queued reports how many calls are waiting or holding the turn.
func (p *Pacer) Queued() int { return int(p.waiting.Load()) }

// Usage reports how many calls the budget holds in the trailing window.
func (p *Pacer) Usage(ctx context.Context, lim policy.RateLimit) (int, error) {
	return p.budget.Usage(ctx, p.key, lim.Period)
}

// Wait returns once the call has been admitted and recorded in the budget,
// with the time it waited. It fails with an *Error: 429 queue_full when
// maxQueue callers already wait (maxQueue <= 0: unbounded), 429 rate_limited
// when no slot frees up before deadline (both with RetryAfter), 503
// store_unavailable when the budget cannot be reached; or with ctx's error
// when the caller leaves.
func (p *Pacer) Wait(ctx context.Context, lim policy.RateLimit, maxQueue int, deadline time.Time) (time.Duration, error) {
	start := p.clock.Now()
	if p.waiting.Load() == 0 {
		// Nobody queued: one Take, and most calls are done.
		g, err := p.budget.Take(ctx, p.key, lim.Requests, lim.Period)
		if err != nil {
			return 0, storeError(err)
		}
		if g.OK {
			return 0, nil
		}
		p.noteNextSlot(start, g.RetryAfter)
	}
	return p.queue(ctx, lim, maxQueue, start, deadline)
}

// WaitAfter is Wait for a call whose first Take was made already, with
// its idempotency claim (store.ClaimTaker): granted, it returns at once;
// refused, the call joins the queue as Wait's would.
func (p *Pacer) WaitAfter(ctx context.Context, first store.Grant, lim policy.RateLimit, maxQueue int, deadline time.Time) (time.Duration, error) {
	if first.OK {
		return 0, nil
	}
	start := p.clock.Now()
	p.noteNextSlot(start, first.RetryAfter)
	return p.queue(ctx, lim, maxQueue, start, deadline)
}

// queue waits in the FIFO for a slot.
func (p *Pacer) queue(ctx context.Context, lim policy.RateLimit, maxQueue int, start, deadline time.Time) (time.Duration, error) {
	n := p.waiting.Add(1)
	defer p.waiting.Add(-1)
	if maxQueue > 0 && n > int64(maxQueue) {
		return 0, &proxy.Error{Status: http.StatusTooManyRequests, Code: CodeQueueFull,
			Message: "too many calls are already waiting for the provider's rate limit", RetryAfter: p.estimate(start, lim, n)}
	}
	if ns := p.nextSlot.Load(); ns != 0 && time.Unix(0, ns).After(deadline) {
		return 0, p.tooLong(time.Unix(0, ns).Sub(start))
	}

	select {
	case p.turn <- struct{}{}:
	default:
		remaining := deadline.Sub(start)
		if remaining <= 0 {
			return 0, p.tooLong(p.untilNextSlot(start))
		}
		t := p.clock.NewTimer(remaining)
		select {
		case p.turn <- struct{}{}:
			t.Stop()
		case <-t.C():
			return 0, p.tooLong(p.untilNextSlot(p.clock.Now()))
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
	defer func() { <-p.turn }()

	for {
		g, err := p.budget.Take(ctx, p.key, lim.Requests, lim.Period)
		if err != nil {
			return 0, storeError(err)
		}
		now := p.clock.Now()
		if g.OK {
			p.nextSlot.Store(0)
			return now.Sub(start), nil
		}
		p.noteNextSlot(now, g.RetryAfter)
		if now.Add(g.RetryAfter).After(deadline) {
			return 0, p.tooLong(g.RetryAfter)
		}
		if err := clock.Sleep(ctx, p.clock, g.RetryAfter); err != nil {
			return 0, err
		}
	}
}

func (p *Pacer) noteNextSlot(now time.Time, after time.Duration) {
	p.nextSlot.Store(now.Add(after).UnixNano())
}

func (p *Pacer) untilNextSlot(now time.Time) time.Duration {
	if ns := p.nextSlot.Load(); ns != 0 {
		if d := time.Unix(0, ns).Sub(now); d > 0 {
			return d
		}
	}
	return time.Second
}

// estimate guesses how long n queued callers need, for a queue_full
// Retry-After: the next slot, or the limit's average spacing times n.
func (p *Pacer) estimate(now time.Time, lim policy.RateLimit, n int64) time.Duration {
	d := time.Duration(int64(lim.Period) / int64(lim.Requests) * n)
	if next := p.untilNextSlot(now); next > d {
		d = next
	}
	return max(d, time.Second)
}

func (p *Pacer) tooLong(retry time.Duration) *proxy.Error {
	return &proxy.Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
		Message: "the provider's rate limit has no free slot within max_wait", RetryAfter: max(retry, time.Millisecond)}
}

func storeError(err error) *proxy.Error {
	return &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable,
		Message: "the shared rate-limit store cannot be reached; no call was sent", RetryAfter: time.Second, Err: err}
}
