package ledger

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Run does the ledger's background work until ctx is done: an expiry pass
// every tenth of the grace (between 1 s and 30 s) and the retention every
// PurgeEvery, starting with both.
func (l *Ledger) Run(ctx context.Context) {
	var lastPurge time.Time
	for ctx.Err() == nil {
		if now := l.clock.Now(); lastPurge.IsZero() || now.Sub(lastPurge) >= PurgeEvery {
			_, _ = l.Purge(ctx)
			lastPurge = now
		}
		_ = l.Sweep(ctx)
		if clock.Sleep(ctx, l.clock, sweepEvery(l.Settings().Grace)) != nil {
			return
		}
	}
}

// Purge deletes the transactions created longer ago than the retention
// and returns how many it deleted.
func (l *Ledger) Purge(ctx context.Context) (int, error) {
	before := l.clock.Now().Add(-l.Settings().Retention)
	total := 0
	for {
		n, err := l.store.Purge(ctx, before, purgeBatch)
		total += n
		if n > 0 {
			l.obs.Purged(n)
		}
		if err != nil {
			l.failed("purge", err)
			return total, err
		}
		if n < purgeBatch || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		l.log.Info("ledger retention applied", zap.Int("deleted", total), zap.Time("created_before", before))
	}
	return total, nil
}
