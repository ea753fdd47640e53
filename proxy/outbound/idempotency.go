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
	return &idempotency{store: s, clock: c, local: make(map[string]*flight)}
}

func (i *idempotency) inFlight() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.local)
}

// createFunc performs the upstream call and returns the answer to keep and
// for how long.
type createFunc func(ctx context.Context) (value []byte, ttl time.Duration, err *proxy.Error)

// do returns the answer for key: the stored one (replayed), the one a
// concurrent duplicate is producing (replayed), or a fresh one from fn.
// A different fingerprint under a live key is a 409. Waiting for another
// replica's call ends at deadline with 409 request_in_flight.
func (i *idempotency) do(ctx context.Context, key, fingerprint string, lease time.Duration, deadline time.Time, fn createFunc) ([]byte, bool, *proxy.Error) {
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

	f.value, f.replayed, f.err = i.lead(ctx, key, fingerprint, lease, deadline, fn)
	i.mu.Lock()
	delete(i.local, key)
	i.mu.Unlock()
	close(f.done)
	return f.value, f.replayed, f.err
}

func (i *idempotency) lead(ctx context.Context, key, fingerprint string, lease time.Duration, deadline time.Time, fn createFunc) ([]byte, bool, *proxy.Error) {
	for {
		c, err := i.store.Begin(ctx, key, fingerprint, lease)
		if err != nil {
			return nil, false, &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable,
				Message: "the idempotency store cannot be reached; no call was sent", RetryAfter: time.Second, Err: err}
		}
		switch c.State {
		case store.Completed:
			if c.Fingerprint != fingerprint {
				return nil, false, conflict()
			}
			return c.Value, true, nil
		case store.InFlight:
			if c.Fingerprint != fingerprint {
				return nil, false, conflict()
			}
			// Another replica owns the call: wait for its answer.
			if i.clock.Now().Add(idemPollEvery).After(deadline) {
				return nil, false, &proxy.Error{Status: http.StatusConflict, Code: CodeRequestInFlight,
					Message: "a request with this merchantReferenceNumber is still in progress; retry shortly", RetryAfter: time.Second}
			}
			if err := clock.Sleep(ctx, i.clock, idemPollEvery); err != nil {
				return nil, false, clientClosed(err)
			}
		default: // Claimed: ours to make
			// The call must finish (and be recorded) even if this client leaves.
			value, ttl, e := fn(ctx)
			bg := context.WithoutCancel(ctx)
			if e != nil {
				_ = i.store.Release(bg, key, fingerprint)
				return nil, false, e
			}
			if err := i.store.Complete(bg, key, fingerprint, value, ttl); err != nil {
				// The answer is good; only its replay is lost. Release so a
				// duplicate does not wait for the lease to expire.
				_ = i.store.Release(bg, key, fingerprint)
			}
			return value, false, nil
		}
	}
}

func conflict() *proxy.Error {
	return &proxy.Error{Status: http.StatusConflict, Code: CodeIdempotencyConflict, Field: "merchantReferenceNumber",
		Message: "this merchantReferenceNumber was already used with a different request within the QR validity"}
}
