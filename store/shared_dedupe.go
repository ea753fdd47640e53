package store

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// SharedDedupe is a spool whose de-duplication is shared with other
// replicas through Redis while its events stay in this replica's own spool
// (the file spool): a webhook one replica stored is a duplicate for all.
//
// The ordering keeps every acknowledged webhook deliverable:
//
//   - Add asks the spool's own set first (a key this replica stored is a
//     duplicate without a network trip), then reserves the key in Redis for
//     a short while (RedisOptions.Reservation). Another replica's
//     reservation is ErrPending, never "duplicate".
//   - Put stores the event (the file spool writes its own mark in the same
//     commit), and only then confirms the key in Redis for the whole dedupe
//     window. A replica that dies in between leaves a reservation that
//     lapses, so the provider's retry is accepted by whichever replica gets
//     it.
//   - When Redis cannot be reached, Add falls back to the spool's own set:
//     webhooks are still accepted and spooled, and a copy sent to another
//     replica during the outage may be delivered twice (never lost).
type SharedDedupe struct {
	Spool
	local  Dedupe // the spool's own set; nil when it has none
	shared *Redis
	log    *zap.Logger
}

// NewSharedDedupe wraps spool. A spool that is itself a Dedupe (the file
// spool) keeps its own marks as well; log may be nil.
func NewSharedDedupe(spool Spool, shared *Redis, log *zap.Logger) *SharedDedupe {
	if log == nil {
		log = zap.NewNop()
	}
	d := &SharedDedupe{Spool: spool, shared: shared, log: log}
	d.local, _ = spool.(Dedupe)
	return d
}

// Unwrap returns the wrapped spool.
func (d *SharedDedupe) Unwrap() Spool { return d.Spool }

// Shared is the Redis store the marks are shared through.
func (d *SharedDedupe) Shared() *Redis { return d.shared }

// Add implements Dedupe.
func (d *SharedDedupe) Add(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if d.local != nil {
		added, err := d.local.Add(ctx, key, ttl)
		if err != nil || !added {
			return added, err
		}
	}
	added, err := d.shared.Add(ctx, key, ttl)
	switch {
	case errors.Is(err, ErrUnavailable):
		// The health state logs the outage once; this replica's own set
		// stands in until Redis returns.
		d.log.Debug("shared de-duplication unreachable; using this replica's own", zap.Error(err))
		return true, nil
	case err == nil && added:
		return true, nil
	}
	// Another replica stored (or is storing) the event: drop our own
	// reservation, which no Put will follow.
	if d.local != nil {
		if u, ok := d.local.(interface{ unreserve(string) }); ok {
			u.unreserve(key)
		} else if rerr := d.local.Remove(ctx, key); rerr != nil {
			return false, rerr
		}
	}
	return false, err
}

// Put implements Spool: the event is stored first, then its key confirmed
// in Redis. A failed confirmation leaves the event stored and the
// reservation to lapse (a possible duplicate on another replica).
func (d *SharedDedupe) Put(ctx context.Context, ev SpoolEvent) error {
	if err := d.Spool.Put(ctx, ev); err != nil {
		return err
	}
	if ev.DedupeKey != "" {
		if err := d.shared.Confirm(ctx, ev.DedupeKey, ev.DedupeUntil.Sub(ev.Received)); err != nil {
			d.log.Debug("stored the event but could not confirm its key in the shared set", zap.Error(err))
		}
	}
	return nil
}

// Contains implements Dedupe.
func (d *SharedDedupe) Contains(ctx context.Context, key string) (bool, error) {
	if d.local != nil {
		if in, err := d.local.Contains(ctx, key); err != nil || in {
			return in, err
		}
	}
	return d.shared.Contains(ctx, key)
}

// Remove implements Dedupe: the key leaves both sets.
func (d *SharedDedupe) Remove(ctx context.Context, key string) error {
	var errLocal error
	if d.local != nil {
		errLocal = d.local.Remove(ctx, key)
	}
	return errors.Join(errLocal, d.shared.Remove(ctx, key))
}

// Interface guards.
var (
	_ Spool  = (*SharedDedupe)(nil)
	_ Dedupe = (*SharedDedupe)(nil)
)
