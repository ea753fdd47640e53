// Package store holds the state qrphgate shares between requests, config
// reloads and (with Redis) replicas, behind one small interface per concern:
// the rate budget, the idempotency cache, the webhook de-duplication set and
// the webhook spool. Each back end (memory, file and Redis) passes the same
// conformance suites in storetest.
//
// It is plain Go: it imports nothing from Caddy and nothing else of ours.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable wraps every failure to reach a shared back end, so callers
// can apply the documented failure mode without knowing the back end.
var ErrUnavailable = errors.New("store unavailable")

// ErrPending is Dedupe.Add's answer for a key that another request (perhaps
// on another replica) has reserved but whose event is not durably stored
// yet: neither new nor a duplicate. The caller must not acknowledge the
// webhook as a duplicate, since the reservation may still come to nothing;
// it answers "retry later" instead.
var ErrPending = errors.New("store: event is still being stored")

// RateBudget admits calls so that no trailing window of the given length ever
// holds more than limit admitted calls for a key: a sliding window, not a
// fixed one (a fixed window lets through twice the limit across its edge).
// Every process sharing a back end shares the budget.
type RateBudget interface {
	// Take admits one call under key if fewer than limit calls were admitted
	// in the trailing window, and records it. Otherwise it records nothing
	// and Grant.RetryAfter says when the oldest admitted call leaves the window.
	Take(ctx context.Context, key string, limit int, window time.Duration) (Grant, error)
	// Usage reports how many calls were admitted under key in the trailing window.
	Usage(ctx context.Context, key string, window time.Duration) (int, error)
}

// Grant is the answer of RateBudget.Take.
type Grant struct {
	// OK is true when the call was admitted and recorded.
	OK bool
	// Used is the number of admitted calls in the window, this one included.
	Used int
	// RetryAfter is, when !OK, the wait until a slot frees up.
	RetryAfter time.Duration
}

// ClaimState is the outcome of Idempotency.Begin.
type ClaimState int

const (
	// Claimed: the key was free; the caller owns the call and must Complete
	// or Release it.
	Claimed ClaimState = iota + 1
	// InFlight: another caller (perhaps another replica) owns the call.
	InFlight
	// Completed: the call finished earlier; Claim.Value holds its answer.
	Completed
)

func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case InFlight:
		return "in_flight"
	case Completed:
		return "completed"
	}
	return "absent"
}

// Claim is the state of an idempotency key.
type Claim struct {
	State ClaimState
	// Fingerprint identifies the request that owns or completed the key;
	// a different fingerprint for the same key is a conflict.
	Fingerprint string
	// Value is the stored answer when State is Completed.
	Value []byte
}

// Idempotency makes one upstream call per key, however many callers (and
// replicas) ask at once, and keeps its answer for a while.
type Idempotency interface {
	// Begin claims key for a call identified by fingerprint. When the key is
	// free it stores an in-flight marker that expires after lease (so a
	// crashed owner does not block the key for ever) and returns Claimed.
	// Otherwise it returns the current owner's state and fingerprint.
	Begin(ctx context.Context, key, fingerprint string, lease time.Duration) (Claim, error)
	// Complete stores value as the answer for key, kept for ttl. Only the
	// owner (same fingerprint) completes a key.
	Complete(ctx context.Context, key, fingerprint string, value []byte, ttl time.Duration) error
	// Release drops the in-flight marker of a failed call so the key can be
	// tried again. It never drops a completed answer or another owner's marker.
	Release(ctx context.Context, key, fingerprint string) error
	// Get reads key without claiming it; State 0 means absent.
	Get(ctx context.Context, key string) (Claim, error)
}

// Dedupe is a set of keys with expiry, for webhook de-duplication.
//
// Back ends that are also the spool (file, Redis), or wrap one
// (SharedDedupe), make Add a reservation only: the key becomes "seen" for
// ttl when the event carrying it (SpoolEvent.DedupeKey) is durably Put. Until
// then Add reports ErrPending to everyone else, and a reservation whose event
// never arrives (the process crashed) lapses, so the provider's retry is
// accepted rather than mistaken for a duplicate of an event nobody stored.
// Memory has no reservations: its marks are as volatile as its spool.
type Dedupe interface {
	// Add inserts key for ttl and reports whether it was absent. false means
	// the key was seen within its ttl: a duplicate. ErrPending means another
	// caller's reservation of the key is not confirmed yet.
	Add(ctx context.Context, key string, ttl time.Duration) (added bool, err error)
	// Contains reports whether key is present.
	Contains(ctx context.Context, key string) (bool, error)
	// Remove deletes key, for an event that could not be stored after all.
	Remove(ctx context.Context, key string) error
}
