package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Buckets of the spool file.
var (
	bucketPending   = []byte("pending")   // event id -> record
	bucketDead      = []byte("dead")      // event id -> record
	bucketDelivered = []byte("delivered") // event id -> record (the history)
	bucketSeen      = []byte("seen")      // dedupe key -> expiry (Unix ns, big endian)
)

// BoltOptions tune OpenBolt; the zero value is the production setting.
type BoltOptions struct {
	// Clock is the time source of de-duplication expiry; clock.Real() when
	// nil.
	Clock clock.Clock

	// LockTimeout is how long to wait for another process to release the
	// file; 5s when zero.
	LockTimeout time.Duration

	// MaxBatch bounds the writes that share one commit; 1024 when zero.
	MaxBatch int

	// SweepEvery is how often expired de-duplication keys are dropped from
	// the file; 10m when zero, never when negative.
	SweepEvery time.Duration

	// AtRest seals the events' payment part when it holds a Sealer; nil
	// or empty: records are written plain.
	AtRest *AtRest
}

// BoltSpool is the file spool: a Spool (and a Dedupe) in one bbolt file.
//
// Every write is fsynced before it returns, and concurrent writes share
// commits (boltCommitter), so throughput grows with concurrency while each
// caller still waits only for its own data to be durable. Pending events
// are indexed in memory (ids and due times only), so claiming needs no disk
// scan.
type BoltSpool struct {
	db     *bolt.DB
	path   string
	now    func() time.Time
	c      *boltCommitter
	atRest *AtRest

	mu        sync.Mutex // guards index, dead, delivered and reserved
	index     *pendingIndex
	dead      int
	delivered int
	reserved  map[string]time.Time // Dedupe.Add reservations not yet made durable by a Put

	stop  chan struct{} // stops the sweeper
	swept chan struct{} // sweeper exited
}

// OpenBolt opens (creating if needed) the spool file at path and loads the
// index of pending events. The file is locked: a second process (or a second
// OpenBolt in this one) waits LockTimeout, then fails.
func OpenBolt(path string, o BoltOptions) (*BoltSpool, error) {
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = 10 * time.Minute
	}
	db, err := openBoltFile(path, "spool", o.LockTimeout)
	if err != nil {
		return nil, err
	}
	s := &BoltSpool{
		db: db, path: path, now: o.Clock.Now, atRest: o.AtRest,
		index:    newPendingIndex(),
		reserved: make(map[string]time.Time),
		stop:     make(chan struct{}),
		swept:    make(chan struct{}),
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("loading spool %s: %w", path, err)
	}
	s.c = newBoltCommitter(db, o.MaxBatch)
	go s.sweepLoop(o.SweepEvery)
	return s, nil
}

func (s *BoltSpool) load() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketDead, bucketDelivered, bucketSeen} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			ev, err := decodeEvent(v, nil, false)
			if err != nil {
				return fmt.Errorf("pending event %q: %w", k, err)
			}
			s.index.add(ev.ID, ev.NextAttempt, ev.Received)
			return nil
		})
		if err != nil {
			return err
		}
		s.dead = tx.Bucket(bucketDead).Stats().KeyN
		s.delivered = tx.Bucket(bucketDelivered).Stats().KeyN
		return nil
	})
}

// Path is the spool file's path.
func (s *BoltSpool) Path() string { return s.path }

// sealer is the at-rest Sealer in use (nil: plain).
func (s *BoltSpool) sealer() *Sealer { return s.atRest.Sealer() }

// CommitStats reports how many commits (each one fsync) carried how many
// writes since the spool was opened: writes/commits is the group-commit
// factor.
func (s *BoltSpool) CommitStats() (commits, writes uint64) { return s.c.stats() }

// write queues apply for the next commit and waits until it is durable.
func (s *BoltSpool) write(apply func(tx *bolt.Tx) error) error { return s.c.write(apply) }

func checkID(id string) error {
	if id == "" || len(id) > 256 {
		return fmt.Errorf("spool: event id must be 1 to 256 bytes")
	}
	return nil
}

// Put implements Spool.
func (s *BoltSpool) Put(ctx context.Context, ev SpoolEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(ev.ID); err != nil {
		return err
	}
	if len(ev.DedupeKey) > 1024 {
		return errors.New("spool: dedupe key longer than 1024 bytes")
	}
	ev.DeadAt = time.Time{}
	rec, id := encodeEvent(&ev, s.sealer()), []byte(ev.ID)
	var seen []byte
	if ev.DedupeKey != "" {
		seen = binary.BigEndian.AppendUint64(nil, uint64(unixNano(ev.DedupeUntil)))
	}
	err := s.write(func(tx *bolt.Tx) error {
		p := tx.Bucket(bucketPending)
		if p.Get(id) != nil || tx.Bucket(bucketDead).Get(id) != nil || tx.Bucket(bucketDelivered).Get(id) != nil {
			return ErrExists
		}
		if err := p.Put(id, rec); err != nil {
			return err
		}
		if seen != nil {
			return tx.Bucket(bucketSeen).Put([]byte(ev.DedupeKey), seen)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.index.add(ev.ID, ev.NextAttempt, ev.Received)
	if ev.DedupeKey != "" {
		delete(s.reserved, ev.DedupeKey) // the durable mark now stands in for it
	}
	s.mu.Unlock()
	return nil
}

// Claim implements Spool.
func (s *BoltSpool) Claim(_ context.Context, now time.Time, lease time.Duration, max int) ([]SpoolEvent, error) {
	if lease <= 0 || max <= 0 {
		return nil, errors.New("spool: claim needs a positive lease and max")
	}
	s.mu.Lock()
	ids := s.index.claim(now, lease, max)
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	evs := make([]SpoolEvent, 0, len(ids))
	sl := s.sealer()
	err := s.db.View(func(tx *bolt.Tx) error {
		p := tx.Bucket(bucketPending)
		for _, id := range ids {
			v := p.Get([]byte(id))
			if v == nil {
				continue // finished by its owner between the index and the read
			}
			ev, err := decodeEvent(v, sl, true)
			if err != nil {
				return fmt.Errorf("pending event %q: %w", id, err)
			}
			evs = append(evs, ev)
		}
		return nil
	})
	return evs, err
}

// NextDue implements Spool.
func (s *BoltSpool) NextDue(context.Context) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.index.next()
	return t, ok, nil
}

// Complete implements Spool.
func (s *BoltSpool) Complete(_ context.Context, id string) error {
	key := []byte(id)
	err := s.write(func(tx *bolt.Tx) error {
		p := tx.Bucket(bucketPending)
		if p.Get(key) == nil {
			return ErrNotFound
		}
		return p.Delete(key)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.index.remove(id)
	s.mu.Unlock()
	return nil
}

// update rewrites a pending event's record with change applied. The
// payment part is not decrypted: it is kept as stored (or sealed, if it
// was stored plain and a Sealer is in use).
func (s *BoltSpool) update(id string, change func(ev *SpoolEvent)) error {
	key := []byte(id)
	sl := s.sealer()
	return s.write(func(tx *bolt.Tx) error {
		p := tx.Bucket(bucketPending)
		v := p.Get(key)
		if v == nil {
			return ErrNotFound
		}
		ev, err := decodeEvent(v, sl, false)
		if err != nil {
			return fmt.Errorf("pending event %q: %w", id, err)
		}
		change(&ev)
		return p.Put(key, encodeEvent(&ev, sl))
	})
}

// Retry implements Spool. When the write fails (a full disk), the event is
// still due again at next in memory, where its claim lives: it is retried
// after the backoff's wait rather than after the claim's lease, and the
// record keeps its previous attempt count until a write succeeds.
func (s *BoltSpool) Retry(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	err := s.update(id, func(ev *SpoolEvent) {
		ev.Attempts, ev.NextAttempt, ev.LastError = attempts, next, lastErr
	})
	s.mu.Lock()
	s.index.setDue(id, next) // a no-op for an event no longer pending
	s.mu.Unlock()
	return err
}

// move takes the record id out of the first bucket of from that holds
// it, applies change and stores it in bucket to; it returns the event
// (its payment part opened when open is set) and the bucket it came from.
func (s *BoltSpool) move(id string, from [][]byte, to []byte, open bool, change func(ev *SpoolEvent)) (SpoolEvent, []byte, error) {
	key := []byte(id)
	sl := s.sealer()
	var (
		moved SpoolEvent
		came  []byte
	)
	err := s.write(func(tx *bolt.Tx) error {
		for _, b := range from {
			src := tx.Bucket(b)
			v := src.Get(key)
			if v == nil {
				continue
			}
			ev, err := decodeEvent(v, sl, open)
			if err != nil {
				return fmt.Errorf("event %q: %w", id, err)
			}
			change(&ev)
			if err := tx.Bucket(to).Put(key, encodeEvent(&ev, sl)); err != nil {
				return err
			}
			moved, came = ev, b
			return src.Delete(key)
		}
		return ErrNotFound
	})
	return moved, came, err
}

// Bury implements Spool.
func (s *BoltSpool) Bury(_ context.Context, id string, attempts int, at time.Time, lastErr string) error {
	_, _, err := s.move(id, [][]byte{bucketPending}, bucketDead, false, func(ev *SpoolEvent) {
		ev.Attempts, ev.DeadAt, ev.LastError = attempts, at, lastErr
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.index.remove(id)
	s.dead++
	s.mu.Unlock()
	return nil
}

// DeadLetters implements Spool.
func (s *BoltSpool) DeadLetters(_ context.Context, max int) ([]SpoolEvent, error) {
	var out []SpoolEvent
	sl := s.sealer()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			ev, err := decodeEvent(v, sl, true)
			if err != nil {
				return fmt.Errorf("dead letter %q: %w", k, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// Replay implements Spool.
func (s *BoltSpool) Replay(_ context.Context, id string, now time.Time) (SpoolEvent, error) {
	ev, came, err := s.move(id, [][]byte{bucketDead, bucketDelivered}, bucketPending, true, func(ev *SpoolEvent) {
		ev.DeadAt, ev.DeliveredAt, ev.RetryFrom, ev.NextAttempt = time.Time{}, time.Time{}, now, now
	})
	if err != nil {
		return SpoolEvent{}, err
	}
	s.mu.Lock()
	s.index.add(id, now, ev.Received)
	if string(came) == string(bucketDead) {
		s.dead--
	} else {
		s.delivered--
	}
	s.mu.Unlock()
	return ev, nil
}

// Archive implements Spool.
func (s *BoltSpool) Archive(_ context.Context, id string, at time.Time) error {
	_, _, err := s.move(id, [][]byte{bucketPending}, bucketDelivered, false, func(ev *SpoolEvent) {
		ev.DeliveredAt = at
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.index.remove(id)
	s.delivered++
	s.mu.Unlock()
	return nil
}

// Stats implements Spool.
func (s *BoltSpool) Stats(context.Context) (SpoolStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolStats{Pending: len(s.index.items), OldestPending: s.index.oldest(), DeadLetters: s.dead, Delivered: s.delivered}, nil
}

// Close implements Spool: it waits for queued writes, then closes the file.
func (s *BoltSpool) Close() error {
	if !s.c.close() {
		return nil
	}
	close(s.stop)
	<-s.swept
	return s.db.Close()
}

// Interface guards.
var (
	_ Spool  = (*BoltSpool)(nil)
	_ Dedupe = (*BoltSpool)(nil)
)
