package inbound

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// History: what happens to events after delivery. A delivered event is
// kept (sealed like the pending ones) for DeliveredRetention and a dead
// letter for DeadLetterRetention, then purged; an operator can list them
// (store.Spool.Events) and queue them again with their original
// Webhook-Id (ReplayMatching), for an app that lost its database.

// audit reports e, naming the spool, to the configured auditor.
func (d *Deliverer) audit(e proxy.AuditEvent) {
	if a := d.Config().Auditor; a != nil {
		e.Spool = d.name
		a.Audit(e)
	}
}

// Replay moves a dead letter (or a delivered event kept in the history)
// back to pending with a fresh redelivery window and wakes the worker;
// remote is who asked (the admin request's address), for the audit trail.
func (d *Deliverer) Replay(ctx context.Context, id, remote string) (store.SpoolEvent, error) {
	ev, err := d.spool.Replay(ctx, id, d.clock.Now())
	if err == nil {
		d.logger().Info("event replayed", proxy.LogString("event_id", id), zap.String("remote", remote))
		d.audit(proxy.AuditEvent{Event: proxy.AuditReplay, EventID: ev.ID, Reference: ev.Reference, Action: ev.Action, Remote: remote})
		d.Wake()
	}
	return ev, err
}

// ReplayReport is what ReplayMatching did.
type ReplayReport struct {
	// Matched events the filter selected; Queued of them went back to the
	// queue; Skipped were pending already (or changed meanwhile).
	Matched int `json:"matched"`
	Queued  int `json:"queued"`
	Skipped int `json:"skipped"`
	// Truncated is set when more events matched than one replay takes
	// (MaxReplay): run it again for the rest.
	Truncated bool `json:"truncated,omitempty"`
}

// Replay pacing: a batch of events is queued, then the replay waits, so a
// replay of thousands neither holds the spool nor floods the app at once
// (the deliverer's concurrency bounds the deliveries anyway).
const (
	MaxReplay        = 10000
	replayBatch      = 100
	replayBatchPause = 50 * time.Millisecond
)

// ReplayMatching queues again, with their original ids, the delivered and
// dead events q selects (pending ones are skipped: they are queued), at
// most MaxReplay, paced; remote is who asked, for the audit trail.
func (d *Deliverer) ReplayMatching(ctx context.Context, q store.EventQuery, remote string) (ReplayReport, error) {
	var rep ReplayReport
	q.Limit = replayBatch
	for {
		page, err := d.spool.Events(ctx, q)
		if err != nil {
			return rep, err
		}
		for _, ev := range page.Events {
			if rep.Matched == MaxReplay {
				rep.Truncated = true
				return rep, nil
			}
			rep.Matched++
			if ev.Status() == store.StatusPending {
				rep.Skipped++
				continue
			}
			_, err := d.Replay(ctx, ev.ID, remote)
			switch {
			case errors.Is(err, store.ErrNotFound):
				rep.Skipped++ // replayed or purged meanwhile
			case err != nil:
				return rep, err
			default:
				rep.Queued++
			}
		}
		if page.Next == "" {
			return rep, nil
		}
		q.Cursor = page.Next
		if err := clock.Sleep(ctx, d.clock, replayBatchPause); err != nil {
			return rep, err
		}
	}
}

// purgeBatch bounds the events one Purge call deletes.
const purgeBatch = 1000

// Purge deletes what retention no longer keeps, in batches, and reports
// it to the audit trail; it returns how many events it deleted. Delivered
// events older than DeliveredRetention go (with a zero retention, those an
// earlier retention kept go at once); dead letters older than
// DeadLetterRetention go when it is set.
func (d *Deliverer) Purge(ctx context.Context) (int, error) {
	cfg := d.Config()
	now := d.clock.Now()
	var delivered, dead int
	purge := func(deliveredBefore, deadBefore time.Time, n *int) error {
		for ctx.Err() == nil {
			k, err := d.spool.Purge(ctx, deliveredBefore, deadBefore, purgeBatch)
			*n += k
			if err != nil || k < purgeBatch {
				return err
			}
		}
		return ctx.Err()
	}
	err := purge(now.Add(-cfg.DeliveredRetention), time.Time{}, &delivered)
	if err == nil && cfg.DeadLetterRetention > 0 {
		err = purge(time.Time{}, now.Add(-cfg.DeadLetterRetention), &dead)
	}
	d.auditPurge(delivered, dead)
	return delivered + dead, err
}

func (d *Deliverer) auditPurge(delivered, dead int) {
	if delivered+dead == 0 {
		return
	}
	d.logger().Info("purged the events retention no longer keeps", zap.Int("delivered", delivered), zap.Int("dead_letters", dead))
	d.audit(proxy.AuditEvent{Event: proxy.AuditPurge, Delivered: delivered, Dead: dead, Remote: "retention"})
}

// RunPurge purges every interval until ctx is done.
func (d *Deliverer) RunPurge(ctx context.Context, every time.Duration) {
	for {
		if d.cfg.Load() != nil {
			if _, err := d.Purge(ctx); err != nil && ctx.Err() == nil {
				d.logger().Warn("purging the event history failed; retrying later", zap.Error(err))
			}
		}
		if clock.Sleep(ctx, d.clock, every) != nil {
			return
		}
	}
}
