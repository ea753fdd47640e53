package outbound

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// idemPollEvery is how often a duplicate polls the store while another
// replica owns the call (same-process duplicates are woken directly).
const idemPollEvery = 100 * time.Millisecond

// idempotency makes one upstream call per key: duplicates in this process
// wait for the leader's result (a local single-flight), duplicates in other
// replicas see the store's in-flight marker and then its answer.
//
// What a failed call does to its key: it is released, so the app may retry
// with the same reference. A failure the gateway is sure of (refused before
// sending, 4xx) created nothing. After an ambiguous failure (timeout or
// reset after the request was written, 5xx) the provider may have created a
// QR, but the app never received it, so nobody can show it to a payer; a
// retry creates the QR the app will use. Keeping the key blocked instead
// would leave the app unable to take that payment for the whole validity.
type idempotency struct {
	store store.Idempotency
	// taker claims a key and takes its call's rate slot in one step (one
	// Redis script); nil when the store has no such thing.
	taker store.ClaimTaker
	// later writes the answer without the caller waiting for it (Redis);
	// nil: Complete is waited for (memory, file: no round trip to save).
	later store.LaterCompleter
	clock clock.Clock

	mu    sync.Mutex
	local map[string]*flight
}

type flight struct {
	fingerprint string
	done        chan struct{}
	value       []byte
	replayed    bool
	err         *proxy.Error
}

func newIdempotency(s store.Idempotency, c clock.Clock) *idempotency {
	i := &idempotency{store: s, clock: c, local: make(map[string]*flight)}
	i.taker, _ = s.(store.ClaimTaker)
	i.later, _ = s.(store.LaterCompleter)
	return i
}

func (i *idempotency) inFlight() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.local)
}

// createFunc performs the upstream call and returns the answer to keep and
// for how long. slot is, when the claim took the call's rate slot too
// (store.ClaimTaker), the outcome of that Take; nil otherwise.
type createFunc func(ctx context.Context, slot *store.Grant) (value []byte, ttl time.Duration, err *proxy.Error)

// takeSlot asks do to take the call's rate slot with its claim, from
// budget limit per window; nil: the claim alone.
type takeSlot struct {
	limit  int
	window time.Duration
}

// do returns the answer for key: the stored one (replayed), the one a
// concurrent duplicate is producing (replayed), or a fresh one from fn.
// A different fingerprint under a live key is a 409. Waiting for another
// replica's call ends at deadline with 409 request_in_flight.
//
// With take (and a store.ClaimTaker), the claim also takes the call's rate
// slot, in one round trip. With a store.LaterCompleter, the answer is handed
// back before the store has it: until it does, duplicates in this process
// get it from the flight, and duplicates elsewhere wait on the in-flight
// marker as they would during the call.
func (i *idempotency) do(ctx context.Context, key, fingerprint string, lease time.Duration, deadline time.Time, take *takeSlot, fn createFunc) ([]byte, bool, *proxy.Error) {
	i.mu.Lock()
	for f := i.local[key]; f != nil; f = i.local[key] {
		i.mu.Unlock()
		if f.fingerprint != fingerprint {
			return nil, false, conflict()
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, clientClosed(ctx.Err())
		}
		switch {
		case f.err == nil:
			return f.value, true, nil
		case f.err.Code != CodeClientClosed:
			return nil, false, f.err
		}
		// The leader's client left before its call was sent: lead instead.
		i.mu.Lock()
	}
	f := &flight{fingerprint: fingerprint, done: make(chan struct{})}
	i.local[key] = f
	i.mu.Unlock()

	var storing bool
	f.value, f.replayed, f.err, storing = i.lead(ctx, key, fingerprint, lease, deadline, take, fn, f)
	if !storing {
		i.forget(key, f)
	}
	close(f.done)
	return f.value, f.replayed, f.err
}

// forget drops the flight f of key once its outcome is in the store.
func (i *idempotency) forget(key string, f *flight) {
	i.mu.Lock()
	if i.local[key] == f {
		delete(i.local, key)
	}
	i.mu.Unlock()
}

// lead makes the call of key. storing reports that its answer is being
// written (LaterCompleter): the flight is forgotten once it is.
func (i *idempotency) lead(ctx context.Context, key, fingerprint string, lease time.Duration, deadline time.Time, take *takeSlot, fn createFunc, f *flight) (value []byte, replayed bool, e *proxy.Error, storing bool) {
	for {
		var c store.Claim
		var slot *store.Grant
		var err error
		if take != nil && i.taker != nil {
			var g store.Grant
			c, g, err = i.taker.BeginTake(ctx, key, fingerprint, lease, take.limit, take.window)
			slot = &g
		} else {
			c, err = i.store.Begin(ctx, key, fingerprint, lease)
		}
		if err != nil {
			return nil, false, &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable,
				Message: "the idempotency store cannot be reached; no call was sent", RetryAfter: time.Second, Err: err}, false
		}
		switch c.State {
		case store.Completed:
			if c.Fingerprint != fingerprint {
				return nil, false, conflict(), false
			}
			return c.Value, true, nil, false
		case store.InFlight:
			if c.Fingerprint != fingerprint {
				return nil, false, conflict(), false
			}
			// Another replica owns the call: wait for its answer.
			if i.clock.Now().Add(idemPollEvery).After(deadline) {
				return nil, false, &proxy.Error{Status: http.StatusConflict, Code: CodeRequestInFlight,
					Message: "a request with this merchantReferenceNumber is still in progress; retry shortly", RetryAfter: time.Second}, false
			}
			if err := clock.Sleep(ctx, i.clock, idemPollEvery); err != nil {
				return nil, false, clientClosed(err), false
			}
		default: // Claimed: ours to make
			// The call must finish (and be recorded) even if this client leaves.
			value, ttl, e := fn(ctx, slot)
			if e != nil {
				_ = i.store.Release(context.WithoutCancel(ctx), key, fingerprint)
				return nil, false, e, false
			}
			if i.later != nil {
				// Written without waiting, pipelined with the others: the
				// answer is good now. Should the write fail, only its replay
				// is lost, as below.
				i.later.CompleteLater(key, fingerprint, value, ttl, func(err error) {
					if err == nil {
						i.forget(key, f)
						return
					}
					go func() {
						_ = i.store.Release(context.WithoutCancel(ctx), key, fingerprint)
						i.forget(key, f)
					}()
				})
				return value, false, nil, true
			}
			bg := context.WithoutCancel(ctx)
			if err := i.store.Complete(bg, key, fingerprint, value, ttl); err != nil {
				// The answer is good; only its replay is lost. Release so a
				// duplicate does not wait for the lease to expire.
				_ = i.store.Release(bg, key, fingerprint)
			}
			return value, false, nil, false
		}
	}
}

func conflict() *proxy.Error {
	return &proxy.Error{Status: http.StatusConflict, Code: CodeIdempotencyConflict, Field: "merchantReferenceNumber",
		Message: "this merchantReferenceNumber was already used with a different request within the QR validity"}
}
