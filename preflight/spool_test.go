package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// The probe leaves nothing behind, and needs its directory to exist: it
// never creates one.
func TestProbeDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := ProbeDirectory(dir, clock.Real()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the probe must leave nothing in the directory: %v %v", entries, err)
	}
	missing := filepath.Join(dir, "new", "spool-dir")
	if _, err := ProbeDirectory(missing, clock.Real()); err == nil {
		t.Fatal("a missing directory was probed")
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Fatalf("the probe created a directory: %v", err)
	}
}

// stepClock advances by step at every reading.
type stepClock struct {
	clock.Clock
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func TestSpoolFileVerdict(t *testing.T) {
	dir := t.TempDir()
	fast := &stepClock{step: time.Millisecond}
	v := SpoolFileVerdict("spool", filepath.Join(dir, "webhooks.spool"), fast)
	if v.Status != OK || v.Elapsed != time.Millisecond || !strings.Contains(v.Reason, "took 1ms") {
		t.Fatalf("fast disk: %+v", v)
	}
	slow := &stepClock{step: 150 * time.Millisecond}
	if v := SpoolFileVerdict("spool", filepath.Join(dir, "webhooks.spool"), slow); v.Status != Warn || !strings.Contains(v.Reason, "150ms") {
		t.Fatalf("slow disk: %+v", v)
	}
	// A directory that does not exist yet is not created: its nearest
	// existing ancestor, where qrphgate will create it, is probed.
	missing := filepath.Join(dir, "data", "caddy", "qrphgate")
	v = SpoolFileVerdict("spool", filepath.Join(missing, "webhooks.spool"), fast)
	if v.Status != OK || !strings.Contains(v.Reason, "does not exist yet") || !strings.Contains(v.Reason, dir+", where it will be, is writable") {
		t.Fatalf("missing directory: %+v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("preflight created a directory: %v", err)
	}
	// A directory that cannot exist: a file is in the way.
	blocker := filepath.Join(dir, "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if v := SpoolFileVerdict("spool", filepath.Join(blocker, "sub", "webhooks.spool"), fast); v.Status != Fail || !strings.Contains(v.Reason, "is a file, not a directory") || v.Fix == "" {
		t.Fatalf("impossible directory: %+v", v)
	}
	// The spool path is a directory: it cannot be opened for writing.
	if err := os.Mkdir(filepath.Join(dir, "is-a-dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if v := SpoolFileVerdict("store", filepath.Join(dir, "is-a-dir"), fast); v.Status != Fail || !strings.Contains(v.Reason, "store file") {
		t.Fatalf("spool path is a directory: %+v", v)
	}
}
