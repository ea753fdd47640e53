package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// openBoltFile opens (creating it and its directory if needed) a bbolt file
// readable by its owner only. The file is locked: a second process (or a
// second open in this one) waits lockTimeout, then fails.
func openBoltFile(path, what string, lockTimeout time.Duration) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s directory: %w", what, err)
	}
	opts := &bolt.Options{
		Timeout: lockTimeout,
		// The freelist is rebuilt on open instead of written on every
		// commit: fewer pages per fsync.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
	db, err := bolt.Open(path, 0o600, opts)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s %s is locked by another process (waited %v)", what, path, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s %s: %w", what, path, err)
	}
	return compactIfMarked(db, path, what, opts)
}

// boltCommitter is group commit for a bbolt file: every write is fsynced
// before its caller goes on, and concurrent writes share commits. One
// goroutine takes every write queued while the previous commit was on disk
// and applies them all in a single transaction (one fsync), so throughput
// grows with concurrency while each caller still waits only for its own
// data. Writes are applied in the order they were queued.
type boltCommitter struct {
	db       *bolt.DB
	maxBatch int

	closeMu sync.RWMutex
	closed  bool
	ops     chan *writeOp
	done    chan struct{} // the commit loop exited

	commits atomic.Uint64
	writes  atomic.Uint64
}

type writeOp struct {
	// apply makes the write inside the batch transaction. It must check
	// everything that can fail before it changes anything, since one op's
	// failure must not undo the others in the batch.
	apply func(tx *bolt.Tx) error
	done  chan error
}

func newBoltCommitter(db *bolt.DB, maxBatch int) *boltCommitter {
	c := &boltCommitter{db: db, maxBatch: maxBatch, ops: make(chan *writeOp, maxBatch), done: make(chan struct{})}
	go c.loop()
	return c
}

// enqueue queues apply for a coming commit and returns the channel its
// result arrives on. Callers that must keep writes in the order of their
// in-memory changes enqueue under their own lock and wait outside it.
func (c *boltCommitter) enqueue(apply func(tx *bolt.Tx) error) <-chan error {
	op := &writeOp{apply: apply, done: make(chan error, 1)}
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		op.done <- ErrClosed
		return op.done
	}
	c.ops <- op
	return op.done
}

// write queues apply and waits until it is durable.
func (c *boltCommitter) write(apply func(tx *bolt.Tx) error) error {
	return <-c.enqueue(apply)
}

// close refuses new writes, waits for the queued ones, and stops the loop.
// It reports whether this call closed it (false: it was closed already).
func (c *boltCommitter) close() bool {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return false
	}
	c.closed = true
	close(c.ops)
	c.closeMu.Unlock()
	<-c.done
	return true
}

// stats reports how many commits carried how many writes so far.
func (c *boltCommitter) stats() (commits, writes uint64) {
	return c.commits.Load(), c.writes.Load()
}

func (c *boltCommitter) loop() {
	defer close(c.done)
	batch := make([]*writeOp, 0, c.maxBatch)
	errs := make([]error, c.maxBatch)
	for op := range c.ops {
		batch = append(batch[:0], op)
	gather:
		for len(batch) < c.maxBatch {
			select {
			case op, ok := <-c.ops:
				if !ok {
					break gather
				}
				batch = append(batch, op)
			default:
				break gather
			}
		}
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, op := range batch {
				errs[i] = op.apply(tx)
			}
			return nil
		})
		c.commits.Add(1)
		c.writes.Add(uint64(len(batch)))
		for i, op := range batch {
			if err != nil {
				op.done <- fmt.Errorf("commit of %s: %w", c.db.Path(), err)
			} else {
				op.done <- errs[i]
			}
			errs[i], batch[i] = nil, nil
		}
	}
}
