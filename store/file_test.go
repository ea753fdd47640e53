package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

func openFile(t *testing.T, path string, c clock.Clock) *store.FileStore {
	t.Helper()
	f, err := store.OpenFile(path, store.FileOptions{Clock: c, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func fileHarness(t *testing.T) (*store.FileStore, storetest.Harness) {
	clk := clock.NewFake(time.Time{})
	return openFile(t, filepath.Join(t.TempDir(), "store.db"), clk), storetest.Harness{Unit: time.Minute, Advance: clk.Advance}
}

func TestFileRateBudget(t *testing.T) {
	f, h := fileHarness(t)
	storetest.RateBudget(t, f, h)
}

func TestFileIdempotency(t *testing.T) {
	f, h := fileHarness(t)
	storetest.Idempotency(t, f, h)
}

// What the file store is for: a restart keeps the calls of the current
// window, the stored answers and the in-flight markers, and drops what
// expired while it was down.
func TestFileSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Time{})
	path := filepath.Join(t.TempDir(), "store.db")
	f, err := store.OpenFile(path, store.FileOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if g, _ := f.Take(ctx, "acct", 3, time.Minute); !g.OK {
			t.Fatalf("take %d refused", i)
		}
		clk.Advance(10 * time.Second)
	}
	if c, _ := f.Begin(ctx, "done", "fp", time.Minute); c.State != store.Claimed {
		t.Fatal(c)
	}
	if err := f.Complete(ctx, "done", "fp", []byte(`{"id":"qr-1"}`), 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _ = f.Begin(ctx, "crashed", "fp", time.Minute)  // in flight when the process dies
	_, _ = f.Begin(ctx, "released", "fp", time.Minute) // failed and given back
	_ = f.Release(ctx, "released", "fp")
	_, _ = f.Begin(ctx, "short", "fp", time.Second)
	_ = f.Complete(ctx, "short", "fp", []byte("x"), time.Second)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Advance(5 * time.Second) // 35 s after the first call
	f = openFile(t, path, clk)
	if g, _ := f.Take(ctx, "acct", 3, time.Minute); g.OK || g.Used != 3 {
		t.Fatalf("after a restart the window lost its calls: %+v", g)
	}
	if g, _ := f.Take(ctx, "acct", 3, time.Minute); g.RetryAfter != 25*time.Second {
		t.Fatalf("RetryAfter %v, want 25s (the first call leaves the window then)", g.RetryAfter)
	}
	if c, _ := f.Get(ctx, "done"); c.State != store.Completed || string(c.Value) != `{"id":"qr-1"}` {
		t.Fatalf("stored answer after restart: %+v", c)
	}
	if c, _ := f.Begin(ctx, "crashed", "fp", time.Minute); c.State != store.InFlight {
		t.Fatalf("an in-flight marker must outlive a crash until its lease ends: %+v", c)
	}
	if c, _ := f.Begin(ctx, "released", "fp", time.Minute); c.State != store.Claimed {
		t.Fatalf("a released key came back: %+v", c)
	}
	if c, _ := f.Get(ctx, "short"); c.State != 0 {
		t.Fatalf("an answer that expired while down came back: %+v", c)
	}
	clk.Advance(time.Minute)
	if c, _ := f.Begin(ctx, "crashed", "fp2", time.Minute); c.State != store.Claimed {
		t.Fatalf("the crashed call's lease did not end: %+v", c)
	}
}

func TestFileIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	openFile(t, path, nil)
	_, err := store.OpenFile(path, store.FileOptions{LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
}

func TestFileRefusesCorruptRecords(t *testing.T) {
	for _, tc := range []struct{ bucket, want string }{{"budget", `budget "k"`}, {"idem", "idempotency record "}} {
		path := filepath.Join(t.TempDir(), "store.db")
		f, err := store.OpenFile(path, store.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(tc.bucket)).Put([]byte("k"), []byte{1, 200}) })
		_ = db.Close()
		if _, err := store.OpenFile(path, store.FileOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: open with a corrupt record: %v", tc.bucket, err)
		}
	}
}

// A closed store answers ErrUnavailable (the gateway's 503), never admits.
func TestFileClosed(t *testing.T) {
	f, err := store.OpenFile(filepath.Join(t.TempDir(), "store.db"), store.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := f.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if g, err := f.Take(context.Background(), "k", 5, time.Minute); err == nil || g.OK {
		t.Fatalf("take on a closed store: %+v %v", g, err)
	}
}
