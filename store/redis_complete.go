package store

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// completer writes idempotent answers (CompleteLater) in pipelines: one
// goroutine gathers the answers queued within completeGather of the first,
// and those queued while the previous pipeline was on the wire, and sends
// them together, so under load many answers share one round trip. Nobody
// waits for them: the app has its answer, duplicates in this process get
// it from memory, and another replica polls an in-flight key every 100 ms.
// Each answer is still its own completeScript (first answer wins; another
// owner's key is never overwritten), so a pipeline is no transaction and
// needs none.
type completer struct {
	c redis.UniversalClient

	mu      sync.Mutex
	closed  bool
	pending []*pendingComplete
	wake    chan struct{} // room for one: answers are pending
	done    chan struct{} // the loop exited
}

type pendingComplete struct {
	name, fingerprint string
	value             []byte
	ttl               time.Duration
	done              func(error)
}

// maxPipeline bounds one pipeline; more pending answers go in the next.
const maxPipeline = 256

// completeGather is how long the first answer of a pipeline waits for
// others: short next to the in-flight poll of another replica (100 ms), and
// the window in which a crash of this process loses the answer's replay
// (the key then stays in flight until its lease ends, as when the write
// fails).
const completeGather = 2 * time.Millisecond

func newCompleter(c redis.UniversalClient) *completer {
	k := &completer{c: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go k.loop()
	return k
}

func (k *completer) add(p *pendingComplete) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		p.done(ErrClosed)
		return
	}
	k.pending = append(k.pending, p)
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// close writes what is pending and stops the loop.
func (k *completer) close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	k.mu.Unlock()
	close(k.wake)
	<-k.done
}

func (k *completer) loop() {
	defer close(k.done)
	var batch []*pendingComplete
	for range k.wake {
		time.Sleep(completeGather)
		for {
			k.mu.Lock()
			n := min(len(k.pending), maxPipeline)
			batch = append(batch[:0], k.pending[:n]...)
			rest := copy(k.pending, k.pending[n:])
			clear(k.pending[rest:])
			k.pending = k.pending[:rest]
			k.mu.Unlock()
			if n == 0 {
				break
			}
			k.send(batch)
			clear(batch)
		}
	}
}

// send writes one batch: one EVALSHA each, in one pipeline. A server that
// lost its scripts (a restart, SCRIPT FLUSH) answers NOSCRIPT: those go
// again one by one, through Run, which loads the script.
func (k *completer) send(batch []*pendingComplete) {
	ctx := context.Background()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = k.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = completeScript.EvalSha(ctx, p, []string{c.name}, c.fingerprint, c.value, c.ttl.Milliseconds())
		}
		return nil
	})
	for i, c := range batch {
		err := cmds[i].Err()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			err = completeScript.Run(ctx, k.c, []string{c.name}, c.fingerprint, c.value, c.ttl.Milliseconds()).Err()
		}
		if err != nil {
			err = unavailable("complete", err)
		}
		c.done(err)
	}
}
