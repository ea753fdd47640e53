package store

import (
	"context"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Re-encryption. When the at-rest keys change (at_rest_key given for the
// first time, or a new key put first), the records written before are
// still plain or sealed with an older key: they stay readable (every
// configured key opens), and a background pass seals them again with the
// current key, so that the older key can be retired. The pass walks a
// back end in small batches; each record is rewritten on its own
// condition that it did not change since it was read (a compare and swap:
// one bbolt transaction per batch, one Redis script per record), so a
// crash in the middle of a pass leaves every record either as it was or
// sealed anew, both readable, and the next pass finishes the work.

// ResealStats counts what a pass (or a batch of it) found.
type ResealStats struct {
	// Checked records, Resealed among them (plain or an older key before).
	Checked, Resealed int
	// Undecryptable records no configured key opens: left as they are.
	Undecryptable int
	// Raced records changed between the read and the rewrite: left for the
	// next pass.
	Raced int
}

func (s *ResealStats) add(o ResealStats) {
	s.Checked += o.Checked
	s.Resealed += o.Resealed
	s.Undecryptable += o.Undecryptable
	s.Raced += o.Raced
}

// Resealer is a back end a re-encryption pass can walk.
type Resealer interface {
	// Reseal examines up to max records after cursor ("" from the
	// start) and seals again, with sl's sealing key, those stored plain
	// or with an older key. It returns where to continue ("" when the
	// walk is complete).
	Reseal(ctx context.Context, sl *Sealer, cursor string, max int) (next string, st ResealStats, err error)
}

// ResealObserver receives a re-encryption runner's progress (metrics,
// logs).
type ResealObserver interface {
	// Resealed reports a batch's counts as they come.
	Resealed(st ResealStats)
	// PassDone reports a complete pass, or one that failed (err set; it is
	// tried again later).
	PassDone(st ResealStats, err error)
}

// ResealOptions pace RunReseal.
type ResealOptions struct {
	// Batch is the records per batch; 100 when zero.
	Batch int

	// Pause is the wait between batches, so a pass over a large store
	// does not compete with payments; 100ms when zero.
	Pause time.Duration

	// Retry is the wait before a failed pass is tried again; 1m when zero.
	Retry time.Duration

	// Clock paces the runner; clock.Real() when nil.
	Clock clock.Clock

	// Observer receives progress; nil: none.
	Observer ResealObserver
}

// RunReseal runs re-encryption passes over r until ctx is done: one when
// it starts (if a Sealer is in use) and one whenever a's Sealer changes.
// A pass that raced with writes, or failed, runs again.
func RunReseal(ctx context.Context, r Resealer, a *AtRest, o ResealOptions) {
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Pause <= 0 {
		o.Pause = 100 * time.Millisecond
	}
	if o.Retry <= 0 {
		o.Retry = time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	for {
		changed := a.Changed()
		if sl := a.Sealer(); sl != nil {
			for again := true; again && ctx.Err() == nil; {
				st, err := resealPass(ctx, r, sl, changed, o)
				if ctx.Err() != nil {
					return
				}
				if o.Observer != nil {
					o.Observer.PassDone(st, err)
				}
				if isClosed(changed) {
					break // the keys changed: start over with them
				}
				again = err != nil || st.Raced > 0
				if again && clock.Sleep(ctx, o.Clock, o.Retry) != nil {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// resealPass walks r once, pausing between batches; it stops early when
// ctx is done or the keys change.
func resealPass(ctx context.Context, r Resealer, sl *Sealer, changed <-chan struct{}, o ResealOptions) (ResealStats, error) {
	var total ResealStats
	cursor := ""
	for {
		next, st, err := r.Reseal(ctx, sl, cursor, o.Batch)
		total.add(st)
		if o.Observer != nil && st != (ResealStats{}) {
			o.Observer.Resealed(st)
		}
		if err != nil || next == "" {
			return total, err
		}
		cursor = next
		if err := clock.Sleep(ctx, o.Clock, o.Pause); err != nil {
			return total, err
		}
		if isClosed(changed) {
			return total, nil
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
