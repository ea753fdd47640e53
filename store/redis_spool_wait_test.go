package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

func replicated(t *testing.T, s *store.RedisSpool, n int, timeout time.Duration) *store.ReplicatedSpool {
	t.Helper()
	v, err := s.WithMinReplicas(n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pendingEvent(id, key string) store.SpoolEvent {
	now := time.Now()
	return store.SpoolEvent{ID: id, Action: "QRPH_SUCCESS", Body: []byte(`{"id":"` + id + `"}`),
		Received: now, RetryFrom: now, NextAttempt: now, DedupeKey: key, DedupeUntil: now.Add(time.Hour)}
}

// With a replica in sync, a Put returns once the replica has the event,
// and its de-duplication mark is confirmed.
func TestReplicatedSpoolPutReachesTheReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set := redistest.SharedSentinel(t)
	b := redisBackend{"sentinel", func(testing.TB) string { return set.URL() }}
	s := openTestRedisSpool(t, openBackend(t, b, store.RedisOptions{}), "", 0)
	v := replicated(t, s, 1, 5*time.Second)
	primary := set.Primary(t)
	var replica *redistest.Server
	for _, srv := range set.Servers() {
		if srv != primary {
			replica = srv
		}
	}
	for i := 0; i < 20; i++ {
		id, key := fmt.Sprintf("w%02d", i), fmt.Sprintf("key-w%02d", i)
		if _, err := v.Add(ctx, key, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := v.Put(ctx, pendingEvent(id, key)); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		// WAIT returned: the replica has the event now, not eventually.
		if n, err := replica.Do(ctx, "EXISTS", store.RedisSpoolEventKey(s, id)).Int(); err != nil || n != 1 {
			t.Fatalf("the replica does not have %s after the Put returned: %d %v", id, n, err)
		}
		if added, err := v.Add(ctx, key, time.Hour); added || err != nil {
			t.Fatalf("add of a stored event's key: %v %v, want a duplicate", added, err)
		}
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != 20 {
		t.Fatalf("stats %+v %v, want 20 pending", st, err)
	}
	// Released for delivery at their due time, not held.
	if evs, err := s.Claim(ctx, time.Now(), time.Minute, 100); err != nil || len(evs) != 20 {
		t.Fatalf("claimed %d of the 20 acknowledged events (%v)", len(evs), err)
	}
}

// Without enough replicas the Put fails (ErrNotReplicated, an
// ErrUnavailable) within its timeout and takes the event back; while it
// waits, a copy of the webhook is told to retry (ErrPending), never that
// it is a duplicate of an event that may not be kept, and no deliverer
// can claim the event.
func TestReplicatedSpoolRefusesWithoutReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	r, err := store.OpenRedis(ctx, srv.URL(), store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := openTestRedisSpool(t, r, "", 0)
	const timeout = 2 * time.Second
	v := replicated(t, s, 1, timeout)
	if added, err := v.Add(ctx, "key-1", time.Hour); !added || err != nil {
		t.Fatalf("add: %v %v", added, err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- v.Put(ctx, pendingEvent("e1", "key-1")) }()
	waitUntil(t, "the event to be written", func() bool {
		n, err := srv.Do(ctx, "EXISTS", store.RedisSpoolEventKey(s, "e1")).Int()
		return err == nil && n == 1
	})
	if added, err := s.Add(ctx, "key-1", time.Hour); added || !errors.Is(err, store.ErrPending) {
		t.Fatalf("a copy during the wait: added %v %v, want ErrPending", added, err)
	}
	if evs, err := s.Claim(ctx, time.Now(), time.Minute, 10); err != nil || len(evs) != 0 {
		t.Fatalf("a deliverer claimed %d events during the wait (%v): a refused event would be delivered", len(evs), err)
	}
	err = <-done
	took := time.Since(start)
	if !errors.Is(err, store.ErrNotReplicated) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("put without a replica: %v, want ErrNotReplicated and ErrUnavailable", err)
	}
	if took < timeout-100*time.Millisecond || took > timeout+5*time.Second {
		t.Fatalf("the put failed after %v; the bound is %v", took, timeout)
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != 0 {
		t.Fatalf("stats after the refused put: %+v %v, want nothing pending", st, err)
	}
	if evs, err := s.Claim(ctx, time.Now(), time.Minute, 10); err != nil || len(evs) != 0 {
		t.Fatalf("claimed %d events after the refused put (%v)", len(evs), err)
	}
	// The pipeline drops the reservation of an event it could not store;
	// the provider's retry is then accepted.
	if err := v.Remove(ctx, "key-1"); err != nil {
		t.Fatal(err)
	}
	if added, err := v.Add(ctx, "key-1", time.Hour); !added || err != nil {
		t.Fatalf("the retry after the refusal: %v %v, want accepted", added, err)
	}
	if _, err := s.WithMinReplicas(0, time.Second); err == nil {
		t.Fatal("WithMinReplicas(0) accepted")
	}
}

// The control of min_replicas: a primary whose only replica is stalled
// (SIGSTOP: connected, but it acknowledges nothing). With the replica
// running a Put is acknowledged; stalled, a Put fails with ErrNotReplicated
// once its timeout has passed, and the event is not kept: no deliverer can
// claim it, the stats do not count it, neither server has it once the
// replica runs again. After SIGCONT a Put is acknowledged again, and the
// replica has it when the Put returns.
func TestReplicatedSpoolStalledReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := redistest.Start(t, redistest.Options{AppendOnly: true})
	replica := redistest.StartReplica(t, primary, redistest.Options{AppendOnly: true})
	r, err := store.OpenRedis(ctx, primary.URL(), store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := openTestRedisSpool(t, r, "", 0)
	const timeout = time.Second
	v := replicated(t, s, 1, timeout)
	onReplica := func(id string) int {
		t.Helper()
		n, err := replica.Do(ctx, "EXISTS", store.RedisSpoolEventKey(s, id)).Int()
		if err != nil {
			t.Fatalf("EXISTS on the replica: %v", err)
		}
		return n
	}

	if err := v.Put(ctx, pendingEvent("running", "key-running")); err != nil {
		t.Fatalf("put with the replica running: %v", err)
	}
	if onReplica("running") != 1 {
		t.Fatal("the replica lacks an event whose Put returned")
	}

	replica.Pause()
	start := time.Now()
	err = v.Put(ctx, pendingEvent("stalled", "key-stalled"))
	took := time.Since(start)
	if !errors.Is(err, store.ErrNotReplicated) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("put with the replica stalled: %v, want ErrNotReplicated (an ErrUnavailable: the webhook is refused)", err)
	}
	if took < timeout {
		t.Fatalf("the put gave up after %v, before its timeout %v", took, timeout)
	}
	t.Logf("with the replica stalled the put failed after %v (timeout %v): %v", took.Round(time.Millisecond), timeout, err)
	if st, err := s.Stats(ctx); err != nil || st.Pending != 1 {
		t.Fatalf("stats with the replica stalled: %+v %v, want only the first event pending", st, err)
	}
	if n, err := primary.Do(ctx, "EXISTS", store.RedisSpoolEventKey(s, "stalled")).Int(); err != nil || n != 0 {
		t.Fatalf("the primary still has the refused event: %d %v", n, err)
	}

	replica.Resume()
	if err := v.Put(ctx, pendingEvent("resumed", "key-resumed")); err != nil {
		t.Fatalf("put after the replica resumed: %v", err)
	}
	// WAIT returned: the replica applied everything before it, the take-
	// back of the refused event included.
	if onReplica("resumed") != 1 || onReplica("stalled") != 0 {
		t.Fatalf("the replica after SIGCONT: resumed %d, stalled %d; want 1 and 0", onReplica("resumed"), onReplica("stalled"))
	}
	evs, err := s.Claim(ctx, time.Now(), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"resumed", "running"}) {
		t.Fatalf("claimed %v, want the two acknowledged events and never the refused one", ids)
	}
}
