package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// The spool file's probe writes and fsyncs, leaves the events alone, does
// not grow the file, and fails once the file is closed. (That it fails on a
// full disk is TestWebhookFullDiskDoesNotParkEvents's, on a tmpfs.)
func TestBoltSpoolProbe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := store.OpenBolt(path, store.BoltOptions{SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	var after3 int64
	for i := 0; i < 20; i++ {
		if err := s.Probe(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			after3 = size()
		}
	}
	// The room a probe writes is given back and used again: probing does
	// not grow the file.
	if got := size(); got != after3 {
		t.Fatalf("the spool file grew from %d to %d bytes over 17 more probes", after3, got)
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != 0 || st.DeadLetters != 0 {
		t.Fatalf("probes changed the spool's events: %+v, %v", st, err)
	}
	_ = s.Close()
	if err := s.Probe(ctx); err == nil {
		t.Fatal("a probe of a closed spool succeeded")
	}
	// The file still opens (the probe bucket is not an event bucket).
	s2, err := store.OpenBolt(path, store.BoltOptions{SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.Close()
}

// A Redis probe write fails with ErrUnavailable while the server is down
// and succeeds again once it is back.
func TestRedisProbeWrite(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r, err := store.OpenRedis(context.Background(), srv.URL(), store.RedisOptions{
		AllowDown: true, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := r.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := r.ProbeWrite(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("probe with the server down: %v", err)
	}
	srv.Restart()
	waitUntil(t, "a probe to succeed again", func() bool { return r.ProbeWrite(ctx) == nil })
}
