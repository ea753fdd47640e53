package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file spool's history: delivered events kept by Archive live in
// their own bucket beside the pending ones and the dead letters, sealed
// like them. Events walks the three buckets at once, newest id first;
// Purge drops what retention no longer keeps.

// historyBuckets are the buckets that hold events of status ("" for all).
func historyBuckets(status string) [][]byte {
	switch status {
	case StatusPending:
		return [][]byte{bucketPending}
	case StatusDelivered:
		return [][]byte{bucketDelivered}
	case StatusDead:
		return [][]byte{bucketDead}
	}
	return [][]byte{bucketPending, bucketDelivered, bucketDead}
}

// descCursor walks one bucket from high keys to low.
type descCursor struct {
	c    *bolt.Cursor
	k, v []byte
}

// newDescCursor positions a cursor on the last key below before (the
// last key of all when before is empty).
func newDescCursor(b *bolt.Bucket, before string) *descCursor {
	d := &descCursor{c: b.Cursor()}
	if before == "" {
		d.k, d.v = d.c.Last()
		return d
	}
	d.k, d.v = d.c.Seek([]byte(before))
	if d.k == nil {
		d.k, d.v = d.c.Last()
	} else {
		d.k, d.v = d.c.Prev()
	}
	for d.k != nil && bytes.Compare(d.k, []byte(before)) >= 0 {
		d.k, d.v = d.c.Prev()
	}
	return d
}

// Events implements Spool.
func (s *BoltSpool) Events(_ context.Context, q EventQuery) (EventPage, error) {
	if err := q.Check(); err != nil {
		return EventPage{}, err
	}
	sl := s.sealer()
	var (
		page EventPage
		last string // the id last examined
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var curs []*descCursor
		for _, b := range historyBuckets(q.Status) {
			curs = append(curs, newDescCursor(tx.Bucket(b), q.Cursor))
		}
		for scanned := 0; ; scanned++ {
			var top *descCursor
			for _, c := range curs {
				if c.k != nil && (top == nil || bytes.Compare(c.k, top.k) > 0) {
					top = c
				}
			}
			if top == nil {
				return nil
			}
			if scanned == MaxEventScan {
				page.Next = last
				return nil
			}
			ev, err := decodeEvent(top.v, sl, false)
			if err != nil {
				return fmt.Errorf("event %q: %w", top.k, err)
			}
			if q.selects(sl, &ev) {
				if len(page.Events) == q.Limit {
					page.Next = page.Events[q.Limit-1].ID
					return nil
				}
				page.Events = append(page.Events, listed(sl, ev))
			}
			last = string(top.k)
			top.k, top.v = top.c.Prev()
		}
	})
	return page, err
}

// Purge implements Spool.
func (s *BoltSpool) Purge(_ context.Context, deliveredBefore, deadBefore time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	expired := func(b []byte, ev *SpoolEvent) bool {
		if string(b) == string(bucketDead) {
			return !deadBefore.IsZero() && ev.DeadAt.Before(deadBefore)
		}
		return !deliveredBefore.IsZero() && ev.DeliveredAt.Before(deliveredBefore)
	}
	type victim struct{ bucket, id []byte }
	var victims []victim
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDelivered, bucketDead} {
			c := tx.Bucket(b).Cursor()
			for k, v := c.First(); k != nil && len(victims) < max; k, v = c.Next() {
				ev, err := decodeEvent(v, nil, false)
				if err != nil {
					return fmt.Errorf("event %q: %w", k, err)
				}
				if expired(b, &ev) {
					victims = append(victims, victim{b, append([]byte(nil), k...)})
				}
			}
		}
		return nil
	})
	if err != nil || len(victims) == 0 {
		return 0, err
	}
	var dead, delivered int
	err = s.write(func(tx *bolt.Tx) error {
		dead, delivered = 0, 0
		for _, vc := range victims {
			b := tx.Bucket(vc.bucket)
			v := b.Get(vc.id)
			if v == nil {
				continue // replayed or purged meanwhile
			}
			ev, err := decodeEvent(v, nil, false)
			if err != nil || !expired(vc.bucket, &ev) {
				continue
			}
			if err := b.Delete(vc.id); err != nil {
				return err
			}
			if string(vc.bucket) == string(bucketDead) {
				dead++
			} else {
				delivered++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.dead -= dead
	s.delivered -= delivered
	s.mu.Unlock()
	return dead + delivered, nil
}
