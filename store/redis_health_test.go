package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

type transitions struct {
	mu  sync.Mutex
	ups []bool
}

func (tr *transitions) StateChanged(_ string, up bool) {
	tr.mu.Lock()
	tr.ups = append(tr.ups, up)
	tr.mu.Unlock()
}

func (tr *transitions) get() []bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]bool(nil), tr.ups...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A private server is stopped and restarted under a live store: every call
// while it is down fails with ErrUnavailable (never hangs, never succeeds
// by accident), the outage and the recovery are each logged and reported
// once however many calls fail, and the store works again without being
// reopened.
func TestRedisOutageIsReportedOncePerTransition(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	core, logs := observer.New(zapcore.InfoLevel)
	var tr transitions
	r, err := store.OpenRedis(context.Background(), srv.URL(), store.RedisOptions{
		Logger: zap.New(core), Observer: &tr, PingEvery: 100 * time.Millisecond,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if g, err := r.Take(ctx, "acct", 10, time.Minute); err != nil || !g.OK {
		t.Fatalf("take while up: %+v %v", g, err)
	}

	srv.Stop()
	for i := 0; i < 20; i++ {
		if g, err := r.Take(ctx, "acct", 10, time.Minute); !errors.Is(err, store.ErrUnavailable) || g.OK {
			t.Fatalf("take %d while down: %+v %v, want ErrUnavailable", i, g, err)
		}
		if _, err := r.Add(ctx, "k", time.Minute); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("add while down: %v", err)
		}
	}
	if st := r.State(); st.Up || st.LastError == "" {
		t.Fatalf("state while down: %+v", st)
	}
	if got := tr.get(); len(got) != 1 || got[0] {
		t.Fatalf("transitions after 40 failed calls: %v, want one to down", got)
	}
	if n := logs.FilterMessageSnippet("store unreachable").Len(); n != 1 {
		t.Fatalf("%d outage log lines, want 1", n)
	}

	srv.Restart()
	waitUntil(t, "the pinger to see the server back", func() bool { return r.State().Up })
	if g, err := r.Take(ctx, "acct", 10, time.Minute); err != nil || !g.OK {
		t.Fatalf("take after recovery: %+v %v", g, err)
	}
	if got := tr.get(); len(got) != 2 || !got[1] {
		t.Fatalf("transitions: %v, want down then up", got)
	}
	if n := logs.FilterMessage("store reachable again").Len(); n != 1 {
		t.Fatalf("%d recovery log lines, want 1", n)
	}
	if st := r.State(); st.Transitions != 2 || st.LastError != "" {
		t.Fatalf("state after recovery: %+v", st)
	}
}

// With AllowDown a store opens on a server that is not there yet (a Redis
// outage must not become a crash loop of every replica) and starts working
// when it appears.
func TestRedisAllowDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	srv.Stop()
	var tr transitions
	r, err := store.OpenRedis(context.Background(), srv.URL(), store.RedisOptions{
		AllowDown: true, Observer: &tr, PingEvery: 100 * time.Millisecond, DialTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("open with AllowDown: %v", err)
	}
	defer r.Close()
	if r.State().Up {
		t.Fatal("state up although the server is down")
	}
	if _, err := r.Begin(context.Background(), "k", "fp", time.Minute); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("begin while down: %v", err)
	}
	srv.Restart()
	waitUntil(t, "the store to come up", func() bool { return r.State().Up })
	if c, err := r.Begin(context.Background(), "k", "fp", time.Minute); err != nil || c.State != store.Claimed {
		t.Fatalf("begin after the server came up: %+v %v", c, err)
	}
	if got := tr.get(); len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("transitions %v, want down then up", got)
	}
}

// The health state runs on the store's clock: Since is the clock's time of
// each transition, the recovery log's down_for the time between them, and
// the PingEvery pings fire as the clock passes each interval, so a server
// that stops is seen without any request.
func TestRedisHealthFollowsTheStoresClock(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clk := clock.NewFake(time.Time{})
	opened := clk.Now()
	core, logs := observer.New(zapcore.InfoLevel)
	r, err := store.OpenRedis(context.Background(), srv.URL(), store.RedisOptions{
		Logger: zap.New(core), Clock: clk, PingEvery: 10 * time.Second,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if st := r.State(); !st.Up || !st.Since.Equal(opened) {
		t.Fatalf("state when opened: %+v, want up since %v", st, opened)
	}

	srv.Stop()
	// The pinger sleeps on the clock: once it does, moving the clock to
	// the end of its interval makes it ping the stopped server.
	if !clk.WaitForTimerAt(opened.Add(10*time.Second), 5*time.Second) {
		t.Fatal("the pinger is not waiting on the store's clock")
	}
	clk.Advance(10 * time.Second)
	waitUntil(t, "the pinger to see the server gone", func() bool { return !r.State().Up })
	down := r.State().Since
	if want := opened.Add(10 * time.Second); !down.Equal(want) {
		t.Fatalf("down since %v, want the clock's %v", down, want)
	}

	clk.Advance(3 * time.Minute)
	srv.Restart()
	waitUntil(t, "a command to reach the server again", func() bool { return r.Ping(context.Background()) == nil })
	if st := r.State(); !st.Up || !st.Since.Equal(down.Add(3*time.Minute)) {
		t.Fatalf("state after recovery: %+v, want up since %v", st, down.Add(3*time.Minute))
	}
	back := logs.FilterMessage("store reachable again").All()
	if len(back) != 1 {
		t.Fatalf("%d recovery log lines, want 1", len(back))
	}
	if got := back[0].ContextMap()["down_for"]; got != 3*time.Minute {
		t.Fatalf("down_for %v, want the clock's 3m0s", got)
	}
}
