package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// The server goes away in the middle of two deliveries: one succeeded (its
// Complete is missed), one failed (its Retry is missed). When the server
// returns, the spool applies both: the delivered event is not delivered
// again, the failed one is due at its retry time, not when its lease ends.
// The events themselves survive the restart (append-only file).
func TestRedisSpoolAppliesMissedWritesWhenTheServerReturns(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	ctx := context.Background()
	r, err := store.OpenRedis(ctx, srv.URL(), store.RedisOptions{DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := openTestRedisSpool(t, r, "outage", 300*time.Millisecond)
	now := time.Now()
	for _, id := range []string{"done", "failed"} {
		if err := s.Put(ctx, store.SpoolEvent{ID: id, Body: []byte("{}"), Received: now, RetryFrom: now, NextAttempt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := s.Claim(ctx, now, time.Hour, 10); len(evs) != 2 {
		t.Fatalf("claimed %d", len(evs))
	}

	srv.Stop()
	if err := s.Complete(ctx, "done"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("complete with the server down: %v", err)
	}
	next := time.Now().Add(time.Second)
	if err := s.Retry(ctx, "failed", 1, next, "HTTP 503"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("retry with the server down: %v", err)
	}
	srv.Restart()

	waitUntil(t, "the missed writes to be applied", func() bool {
		st, err := s.Stats(ctx)
		return err == nil && st.Pending == 1
	})
	var evs []store.SpoolEvent
	waitUntil(t, "the failed event to be due at its retry time", func() bool {
		evs, _ = s.Claim(ctx, time.Now(), time.Hour, 10)
		return len(evs) > 0
	})
	if len(evs) != 1 || evs[0].ID != "failed" || evs[0].Attempts != 1 || evs[0].LastError != "HTTP 503" || time.Now().Before(next) {
		t.Fatalf("after the restart: %+v", evs)
	}
}
