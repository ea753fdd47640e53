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
//
// The batch adapts to the load: the loop keeps a moving average of how many
// writes its commits carried. When fewer are queued than that (writers that
// usually share a commit are still on their way: decrypting, parsing), it
// waits for them, until the batch reaches the average, but never longer than
// half the last commit took (an fsync saved is worth more than that) nor
// gatherMax. A lone writer's average is one, so its write is never delayed;
// after a burst, the first wait that ends short resets the average to the
// batch it got, so a writer left alone waits once.
type boltCommitter struct {
	db       *bolt.DB
	maxBatch int

	closeMu sync.RWMutex
	closed  bool
	ops     chan *writeOp
	done    chan struct{} // the commit loop exited

	commits atomic.Uint64
	writes  atomic.Uint64
	waits   atomic.Uint64 // commits that waited for more writes

	// The loop's own: the moving average of the batch size (in 1/16ths of
	// a write, so an integer) and how long the last commit took.
	avg16      int
	lastCommit time.Duration
}

// gatherMax bounds how long a batch waits for more writes.
const gatherMax = 2 * time.Millisecond

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

// delayed reports how many commits waited for more writes (see gather).
func (c *boltCommitter) delayed() uint64 { return c.waits.Load() }

// gather adds the queued writes to batch and, when the batch is smaller
// than the commits' average, waits a little for the writers still on
// their way (see boltCommitter).
func (c *boltCommitter) gather(batch []*writeOp, timer *time.Timer) []*writeOp {
	for len(batch) < c.maxBatch {
		select {
		case op, ok := <-c.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
			continue
		default:
		}
		break
	}
	target := min((c.avg16+8)/16, c.maxBatch)
	wait := min(c.lastCommit/2, gatherMax)
	if len(batch) >= target || wait <= 0 {
		return batch
	}
	c.waits.Add(1)
	timer.Reset(wait)
	defer timer.Stop()
	for len(batch) < target {
		select {
		case op, ok := <-c.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
		case <-timer.C:
			// Fewer writers than the average: take this batch as the new
			// average, so a writer left alone waits once, not for as long
			// as the average takes to decay.
			c.avg16 = len(batch) * 16
			return batch
		}
	}
	return batch
}

func (c *boltCommitter) loop() {
	defer close(c.done)
	batch := make([]*writeOp, 0, c.maxBatch)
	errs := make([]error, c.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	c.avg16 = 16
	for op := range c.ops {
		batch = c.gather(append(batch[:0], op), timer)
		start := time.Now()
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, op := range batch {
				errs[i] = op.apply(tx)
			}
			return nil
		})
		c.lastCommit = time.Since(start)
		// avg += (n - avg) / 8, in sixteenths.
		c.avg16 += (len(batch)*16 - c.avg16) / 8
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
