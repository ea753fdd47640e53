package store_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// replyDropper is a TCP proxy to a Redis server that, while drop is set,
// passes requests on and then hangs up instead of passing the reply back:
// a command that ran on the server but whose answer was lost.
type replyDropper struct {
	l    net.Listener
	to   string
	drop atomic.Bool
	wg   sync.WaitGroup
}

func newReplyDropper(t *testing.T, to string) *replyDropper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropper{l: l, to: to}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { _ = l.Close(); p.wg.Wait() })
	return p
}

func (p *replyDropper) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.to)
		if err != nil {
			_ = c.Close()
			continue
		}
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if err != nil || p.drop.Load() {
					_ = c.Close()
					_ = s.Close()
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// A claim runs on the server but its answer is lost (the connection
// drops): the events it took are handed back by the next heartbeat, not
// hidden until their lease ends; events the deliverer holds stay its own.
func TestRedisSpoolHandsBackALostClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := testPrefix()
	proxy := newReplyDropper(t, "127.0.0.1:6379")
	r, err := store.OpenRedis(ctx, "redis://"+proxy.l.Addr().String()+"/0", store.RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); redistest.DropKeys(t, prefix) })
	const hb = 600 * time.Millisecond
	s := openTestRedisSpool(t, r, "lost", hb)
	now := time.Now()
	for _, id := range []string{"held", "lost"} {
		if err := s.Put(ctx, store.SpoolEvent{ID: id, Body: []byte("{}"), Received: now, RetryFrom: now, NextAttempt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if evs, err := s.Claim(ctx, now, time.Hour, 1); err != nil || len(evs) != 1 || evs[0].ID != "held" {
		t.Fatalf("first claim: %v %v", evs, err)
	}
	proxy.drop.Store(true)
	if _, err := s.Claim(ctx, now, time.Hour, 10); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("claim with its answer lost: %v, want ErrUnavailable", err)
	}
	proxy.drop.Store(false)
	// The lost claim took "lost" for an hour; the heartbeat hands it back.
	var got []store.SpoolEvent
	waitUntil(t, "the lost claim's event to be claimable again", func() bool {
		evs, err := s.Claim(ctx, time.Now(), time.Hour, 10)
		if err != nil {
			return false
		}
		got = append(got, evs...)
		return len(got) > 0
	})
	if len(got) != 1 || got[0].ID != "lost" {
		t.Fatalf("claimed again %v, want only the lost claim's event (the held one is the deliverer's)", got)
	}
}

// On a Cluster the client runs a command again when its reply timed out:
// a claim sent to a stalled node runs twice once the node resumes, and the
// reply of the second run hides the events the first took. Those are
// handed back by the next heartbeat too, not hidden until their lease
// ends.
func TestRedisSpoolHandsBackARetriedClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	r, err := store.OpenRedis(ctx, cl.URL(), store.RedisOptions{ReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const hb = 600 * time.Millisecond
	s := openTestRedisSpool(t, r, "retried", hb)
	now := time.Now()
	ids := []string{"e1", "e2", "e3", "e4"}
	for _, id := range ids {
		if err := s.Put(ctx, store.SpoolEvent{ID: id, Body: []byte("{}"), Received: now, RetryFrom: now, NextAttempt: now}); err != nil {
			t.Fatal(err)
		}
	}
	// Load the claim script first (nothing is due an hour ago): a stalled
	// EVALSHA of a script the node lacks would run as NOSCRIPT, claiming
	// nothing.
	if evs, err := s.Claim(ctx, now.Add(-time.Hour), time.Hour, 1); err != nil || len(evs) != 0 {
		t.Fatalf("warm-up claim: %v %v", evs, err)
	}
	node := cl.Primary(t, store.RedisSpoolEventKey(s, "x"))
	node.Pause()
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		time.Sleep(500 * time.Millisecond) // the stall: longer than a read, shorter than the client's retries
		node.Resume()
	}()
	evs, err := s.Claim(ctx, now, time.Hour, 1)
	<-resumed
	if err != nil {
		t.Fatalf("claim across the stall: %v; the client's retries should have outlasted it", err)
	}
	got := map[string]bool{}
	for _, ev := range evs {
		got[ev.ID] = true
	}
	// Whatever the retries took beyond what the reply names comes back.
	waitUntil(t, "every event held or claimable again", func() bool {
		evs, err := s.Claim(ctx, time.Now(), time.Hour, 10)
		if err != nil {
			return false
		}
		for _, ev := range evs {
			if got[ev.ID] {
				t.Fatalf("%s claimed again while the deliverer holds it", ev.ID)
			}
			got[ev.ID] = true
		}
		return len(got) == len(ids)
	})
}
