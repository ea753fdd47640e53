package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

func openBolt(t *testing.T, path string, c clock.Clock) *store.BoltSpool {
	t.Helper()
	s, err := store.OpenBolt(path, store.BoltOptions{Clock: c, LockTimeout: 200 * time.Millisecond, SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBoltDedupe(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), clk)
	defer s.Close()
	storetest.Dedupe(t, s, storetest.Harness{Unit: time.Minute, Advance: clk.Advance})
}

func event(id, key string, until time.Time) store.SpoolEvent {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	return store.SpoolEvent{ID: id, Body: []byte(`{}`), Received: now, RetryFrom: now, NextAttempt: now,
		DedupeKey: key, DedupeUntil: until}
}

// The crash-ordering guarantee: a key is durably "seen" only together with
// its event. A reservation (Add) without a Put dies with the process; a Put
// carrying the key makes it survive a restart until DedupeUntil.
func TestBoltDedupeIsDurableOnlyWithItsEvent(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Time{})
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBolt(t, path, clk)
	for _, k := range []string{"stored", "reserved-only"} {
		if added, err := s.Add(ctx, k, time.Hour); err != nil || !added {
			t.Fatalf("add %s: %v %v", k, added, err)
		}
	}
	if err := s.Put(ctx, event("e1", "stored", clk.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if added, _ := s.Add(ctx, "stored", time.Hour); added {
		t.Fatal("a key whose event is spooled was not a duplicate")
	}
	_ = s.Close() // a restart (the reservation was never made durable)

	s = openBolt(t, path, clk)
	defer s.Close()
	if added, _ := s.Add(ctx, "stored", time.Hour); added {
		t.Fatal("the durable mark did not survive a restart")
	}
	if added, _ := s.Add(ctx, "reserved-only", time.Hour); !added {
		t.Fatal("a reservation without its event survived a restart: the provider's retry would be lost")
	}
	clk.Advance(time.Hour + time.Second)
	if in, _ := s.Contains(ctx, "stored"); in {
		t.Fatal("the durable mark outlived DedupeUntil")
	}
	if n := store.SweepBolt(s); n != 1 {
		t.Fatalf("sweep dropped %d marks, want 1", n)
	}
	if added, _ := s.Add(ctx, "stored", time.Hour); !added {
		t.Fatal("an expired key was still a duplicate after the sweep")
	}
}

func TestBoltRemoveDropsTheDurableMark(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Time{})
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBolt(t, path, clk)
	_ = s.Put(ctx, event("e1", "k", clk.Now().Add(time.Hour)))
	if err := s.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = openBolt(t, path, clk)
	defer s.Close()
	if in, _ := s.Contains(ctx, "k"); in {
		t.Fatal("Remove did not reach the file")
	}
}

func TestBoltFileIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBolt(t, path, nil)
	defer s.Close()
	_, err := store.OpenBolt(path, store.BoltOptions{LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
}

func TestBoltRefusesACorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBolt(t, path, nil)
	_ = s.Put(context.Background(), event("e1", "", time.Time{}))
	_ = s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("pending")).Put([]byte("e1"), []byte{1, 200}) })
	_ = db.Close()
	_, err = store.OpenBolt(path, store.BoltOptions{})
	if err == nil || !strings.Contains(err.Error(), `pending event "e1"`) {
		t.Fatalf("open with a corrupt record: %v", err)
	}
}

func TestBoltClosedSpool(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Put(context.Background(), event("e1", "", time.Time{})); err != store.ErrClosed {
		t.Fatalf("put after close: %v", err)
	}
}

// Concurrent writers share commits (one fsync each): with 64 writers the
// spool must commit far fewer times than it writes. The ratio is reported;
// only "some sharing happened" is asserted, never a timing.
func TestBoltGroupCommit(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), nil)
	defer s.Close()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Put(context.Background(), event(fmt.Sprintf("w%d-%d", w, i), "", time.Time{})); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	commits, writes := s.CommitStats()
	t.Logf("%d writes in %d commits (%.1f writes per fsync)", writes, commits, float64(writes)/float64(commits))
	if writes != writers*each {
		t.Fatalf("%d writes counted, want %d", writes, writers*each)
	}
	if commits*2 > writes {
		t.Fatalf("%d commits for %d concurrent writes: writes are not sharing commits", commits, writes)
	}
}

// The adaptive batch never delays a lone writer: one writer, one write at
// a time, never waits for company. After a burst of concurrent writes the
// batch's average falls back to one within a few commits, and the lone
// writer's writes go at once again: the first wait that ends short resets
// the average.
func TestBoltGroupCommitLoneWriter(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), nil)
	defer s.Close()
	put := func(id string) {
		if err := s.Put(context.Background(), event(id, "", time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		put(fmt.Sprintf("lone-%d", i))
	}
	if n := store.BoltDelayedCommits(s); n != 0 {
		t.Fatalf("%d of a lone writer's commits waited for company", n)
	}
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := s.Put(context.Background(), event(fmt.Sprintf("burst%d-%d", w, i), "", time.Time{})); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	before := store.BoltDelayedCommits(s)
	for i := 0; i < 100; i++ {
		put(fmt.Sprintf("after-%d", i))
	}
	if n := store.BoltDelayedCommits(s) - before; n > 2 {
		t.Fatalf("%d of 100 lone writes after a burst waited for company", n)
	}
}

// The spool file is readable only by its owner: it holds decrypted payloads.
func TestBoltFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "spool.db")
	s := openBolt(t, path, nil)
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file mode %v, want 0600", fi.Mode().Perm())
	}
}

func BenchmarkBoltPutParallel(b *testing.B) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "spool.db"), store.BoltOptions{SweepEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n sync.Mutex
	seq := 0
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			seq++
			id := fmt.Sprintf("b%09d", seq)
			n.Unlock()
			if err := s.Put(context.Background(), event(id, "k"+id, time.Now().Add(time.Hour))); err != nil {
				b.Fatal(err)
			}
		}
	})
	commits, writes := s.CommitStats()
	b.ReportMetric(float64(writes)/float64(commits), "writes/fsync")
}

// The same without concurrency: one fsync per write, the cost group commit
// amortises.
func BenchmarkBoltPutSerial(b *testing.B) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "spool.db"), store.BoltOptions{SweepEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("b%09d", i)
		if err := s.Put(context.Background(), event(id, "k"+id, time.Now().Add(time.Hour))); err != nil {
			b.Fatal(err)
		}
	}
}

// A reschedule that cannot be written (a full disk; here the file is
// closed under it) keeps the event's attempt count and last error as they
// were: the record changes only with a write that succeeds, so the next
// attempt (after a restart here) repeats the number of the one whose
// reschedule was lost (docs/webhooks.md, Delivery guarantees).
func TestBoltFailedRetryKeepsTheAttemptCount(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBolt(t, path, nil)
	ev := event("e1", "", time.Time{})
	if err := s.Put(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.Claim(ctx, ev.NextAttempt, time.Hour, 1); err != nil || len(evs) != 1 {
		t.Fatalf("claim: %v %v", evs, err)
	}
	first := ev.NextAttempt.Add(time.Second)
	if err := s.Retry(ctx, "e1", 1, first, "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Claim(ctx, first, time.Hour, 1)
	if err != nil || len(evs) != 1 || evs[0].Attempts != 1 {
		t.Fatalf("claim after the first retry: %+v %v", evs, err)
	}
	_ = s.Close()
	if err := s.Retry(ctx, "e1", 2, first.Add(2*time.Second), "timeout"); err == nil {
		t.Fatal("a retry on a closed spool succeeded")
	}
	s = openBolt(t, path, nil)
	defer s.Close()
	evs, err = s.Claim(ctx, first.Add(time.Hour), time.Hour, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("claim after the failed retry: %+v %v", evs, err)
	}
	if evs[0].Attempts != 1 || evs[0].LastError != "HTTP 503" {
		t.Fatalf("after a failed retry: attempts %d, last error %q; want the previous 1 and HTTP 503", evs[0].Attempts, evs[0].LastError)
	}
}

// A replay that cannot be written leaves the dead letter as it was, its
// attempt count included; the replay that succeeds keeps the count too, so
// Webhook-Attempt goes on from it.
func TestBoltFailedReplayKeepsTheAttemptCount(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBolt(t, path, nil)
	ev := event("e1", "", time.Time{})
	if err := s.Put(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Bury(ctx, "e1", 7, ev.NextAttempt.Add(time.Hour), "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := s.Replay(ctx, "e1", ev.NextAttempt.Add(2*time.Hour)); err == nil {
		t.Fatal("a replay on a closed spool succeeded")
	}
	s = openBolt(t, path, nil)
	defer s.Close()
	dl, err := s.DeadLetters(ctx, 10)
	if err != nil || len(dl) != 1 || dl[0].Attempts != 7 {
		t.Fatalf("dead letters after the failed replay: %+v %v", dl, err)
	}
	got, err := s.Replay(ctx, "e1", ev.NextAttempt.Add(2*time.Hour))
	if err != nil || got.Attempts != 7 {
		t.Fatalf("replay: attempts %d, %v; want 7 kept", got.Attempts, err)
	}
}

// A reschedule that cannot be written (a full disk; here the file is
// closed under it) still moves the event's due time in memory: it comes
// back after the retry's wait, not after the claim's lease.
func TestBoltFailedRetryKeepsTheDueTimeInMemory(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, filepath.Join(t.TempDir(), "spool.db"), nil)
	ev := event("e1", "", time.Time{})
	if err := s.Put(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.Claim(ctx, ev.NextAttempt, time.Hour, 1); err != nil || len(evs) != 1 {
		t.Fatalf("claim: %v %v", evs, err)
	}
	_ = s.Close()
	next := ev.NextAttempt.Add(2 * time.Second)
	if err := s.Retry(ctx, "e1", 1, next, "HTTP 503"); err == nil {
		t.Fatal("a retry on a closed spool succeeded")
	}
	due, ok, err := s.NextDue(ctx)
	if err != nil || !ok || !due.Equal(next) {
		t.Fatalf("due %v (%v %v), want %v: the event is parked for the lease", due, ok, err, next)
	}
}
