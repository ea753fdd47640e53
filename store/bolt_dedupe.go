package store

import (
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file spool is also the webhook gateway's de-duplication set, so that
// "seen" survives a restart and is never ahead of the spool:
//
//   - Add reserves a key in memory only.
//   - Put of an event carrying the key (SpoolEvent.DedupeKey) writes the
//     durable mark in the same commit as the event.
//
// A crash between the two therefore leaves neither, and the provider's
// retry of that webhook is accepted rather than mistaken for a duplicate of
// an event that was never stored. While a reservation waits for its Put,
// a second Add of the key gets ErrPending, not "duplicate": the Put may
// still fail. A key that is Added and never Put lives in memory until its
// ttl, like the Memory store's.

// Add implements Dedupe.
func (s *BoltSpool) Add(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := s.now()
	// The durable check stays under s.mu so that it and the reservation are
	// one step against a Put that commits the mark and drops the
	// reservation in between; a bbolt View is an mmap read, not disk I/O.
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, err := s.seen(key, now)
	if err != nil || seen {
		return false, err
	}
	if exp, ok := s.reserved[key]; ok && now.Before(exp) {
		return false, ErrPending
	}
	s.reserved[key] = now.Add(ttl)
	return true, nil
}

// unreserve drops a reservation Add made, leaving any durable mark alone
// (SharedDedupe: another replica had the key after all).
func (s *BoltSpool) unreserve(key string) {
	s.mu.Lock()
	delete(s.reserved, key)
	s.mu.Unlock()
}

// Contains implements Dedupe.
func (s *BoltSpool) Contains(_ context.Context, key string) (bool, error) {
	now := s.now()
	s.mu.Lock()
	exp, ok := s.reserved[key]
	s.mu.Unlock()
	if ok && now.Before(exp) {
		return true, nil
	}
	return s.seen(key, now)
}

// Remove implements Dedupe: it drops the reservation and the durable mark.
func (s *BoltSpool) Remove(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.reserved, key)
	s.mu.Unlock()
	return s.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSeen).Delete([]byte(key))
	})
}

// seen reports whether key has an unexpired durable mark.
func (s *BoltSpool) seen(key string, now time.Time) (bool, error) {
	var seen bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSeen).Get([]byte(key))
		seen = len(v) == 8 && now.UnixNano() < int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return seen, err
}

// sweepBatch bounds the keys one sweep transaction deletes.
const sweepBatch = 10000

// sweep drops expired durable marks and reservations, and returns how many
// durable marks it deleted.
func (s *BoltSpool) sweep() int {
	now := s.now()
	s.mu.Lock()
	for k, exp := range s.reserved {
		if !now.Before(exp) {
			delete(s.reserved, k)
		}
	}
	s.mu.Unlock()
	total := 0
	for {
		var expired [][]byte
		_ = s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketSeen).Cursor()
			for k, v := c.First(); k != nil && len(expired) < sweepBatch; k, v = c.Next() {
				if len(v) != 8 || now.UnixNano() >= int64(binary.BigEndian.Uint64(v)) {
					expired = append(expired, append([]byte(nil), k...))
				}
			}
			return nil
		})
		if len(expired) == 0 {
			return total
		}
		err := s.write(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSeen)
			for _, k := range expired {
				// Re-check: a Put may have renewed the key since the scan.
				if v := b.Get(k); v != nil && (len(v) != 8 || now.UnixNano() >= int64(binary.BigEndian.Uint64(v))) {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return total
		}
		total += len(expired)
		if len(expired) < sweepBatch {
			return total
		}
	}
}

func (s *BoltSpool) sweepLoop(every time.Duration) {
	defer close(s.swept)
	if every < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}
