package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/audit"
	"github.com/qrphgate/qrphgate/internal/clock"
)

var t0 = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)

type counts struct {
	mu                        sync.Mutex
	written, dropped, rotated int
	errs                      []error
}

func (c *counts) Written(n int) { c.mu.Lock(); c.written += n; c.mu.Unlock() }
func (c *counts) Dropped(err error) {
	c.mu.Lock()
	c.dropped++
	if err != nil {
		c.errs = append(c.errs, err)
	}
	c.mu.Unlock()
}
func (c *counts) Rotated(err error) {
	c.mu.Lock()
	c.rotated++
	if err != nil {
		c.errs = append(c.errs, err)
	}
	c.mu.Unlock()
}

func open(t *testing.T, path string, o audit.Options) *audit.Trail {
	t.Helper()
	if o.Clock == nil {
		o.Clock = clock.NewFake(t0)
	}
	tr, err := audit.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

type delivery struct {
	EventID string `json:"event_id"`
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`
}

func appendN(tr *audit.Trail, from, n int) {
	for i := from; i < from+n; i++ {
		tr.Append("delivery", delivery{EventID: fmt.Sprintf("evt_%03d", i), Outcome: "delivered", Status: 200})
	}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestTrailChainsAcrossReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit", "audit.log")
	c := new(counts)
	tr := open(t, path, audit.Options{Observer: c})
	tr.Append("qr_created", map[string]string{"transaction_id": "tx-1", "reference": "ORDER-1"})
	appendN(tr, 0, 9)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	seq, head := tr.Head()
	tr = open(t, path, audit.Options{Observer: c})
	if s, h := tr.Head(); s != seq || h != head || s != 10 {
		t.Fatalf("reopened head %d %s, want %d %s", s, h, seq, head)
	}
	appendN(tr, 9, 5)
	tr.Append("replay", nil)
	_ = tr.Close()
	ls := lines(t, path)
	if len(ls) != 16 || c.written != 16 {
		t.Fatalf("%d lines, %d written", len(ls), c.written)
	}
	if !strings.HasPrefix(ls[0], `{"seq":1,"time":"2026-01-15T10:30:00Z","event":"qr_created","reference":"ORDER-1","transaction_id":"tx-1","prev":"`+audit.ZeroHash+`"}`) {
		t.Fatalf("first line %s", ls[0])
	}
	if !strings.Contains(ls[15], `"event":"replay","prev":"`) {
		t.Fatalf("a line without fields: %s", ls[15])
	}
	rep, err := audit.Verify(path)
	if err != nil || rep.Lines != 16 || !rep.Anchored || rep.Last != 16 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if s, h := tr.Head(); rep.Head != h || s != 16 {
		t.Fatalf("verify's head %s, the trail's %s", rep.Head, h)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

// Any edit or deletion breaks the chain, and Verify names the line.
func TestVerifyFindsTampering(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	tr := open(t, path, audit.Options{})
	appendN(tr, 0, 10)
	_ = tr.Close()
	orig := lines(t, path)
	for name, c := range map[string]struct {
		edit     func(ls []string) []string
		line     int
		inReason string
	}{
		"a field changed": {func(ls []string) []string {
			ls[4] = strings.Replace(ls[4], "delivered", "rejected!", 1)
			return ls
		}, 6, "that line was changed"},
		"a line removed": {func(ls []string) []string { return append(ls[:3], ls[4:]...) }, 4, "lines are missing"},
		"lines swapped": {func(ls []string) []string {
			ls[2], ls[3] = ls[3], ls[2]
			return ls
		}, 3, "out of order"},
		"a line made up": {func(ls []string) []string {
			ls[7] = strings.Replace(ls[7], `"evt_007"`, `"evt_999"`, 1)
			ls = ls[:8] // and the lines after it dropped: only the head shows it
			return ls
		}, 0, ""},
		"garbage": {func(ls []string) []string {
			ls[1] = "not json"
			return ls
		}, 2, "not an audit line"},
	} {
		ls := c.edit(append([]string(nil), orig...))
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(p)
		if c.line == 0 {
			// A forged last line with nothing after it passes the chain;
			// its head differs from the one recorded when it was written.
			if err != nil || rep.Head == "" {
				t.Fatalf("%s: %v", name, err)
			}
			_, head := tr.Head()
			if rep.Head == head {
				t.Fatalf("%s: the forged trail has the real head", name)
			}
			continue
		}
		var be *audit.BrokenError
		if !errors.As(err, &be) || be.Line != c.line || !strings.Contains(be.Reason, c.inReason) || be.File != p {
			t.Errorf("%s: %v, want line %d (%s)", name, err, c.line, c.inReason)
		}
	}
}

// Rotation by size: the chain runs across the files, which Verify takes
// in any order; a missing file is a gap.
func TestTrailRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	clk := clock.NewFake(t0)
	c := new(counts)
	tr := open(t, path, audit.Options{MaxBytes: 1500, Clock: clk, Observer: c})
	for i := 0; i < 6; i++ {
		appendN(tr, i*5, 5)
		waitWritten(t, c, (i+1)*5)
		clk.Advance(time.Second) // distinct rotated names
	}
	_ = tr.Close()
	files, _ := filepath.Glob(path + "*")
	if len(files) < 3 || c.rotated < 2 || len(c.errs) > 0 {
		t.Fatalf("files %v, %d rotations, errors %v", files, c.rotated, c.errs)
	}
	// Reversed: Verify orders them by their first line.
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	rep, err := audit.Verify(files...)
	if err != nil || rep.Lines != 30 || !rep.Anchored {
		t.Fatalf("verify of %v: %+v %v", files, rep, err)
	}
	// The newest file alone: its chain holds, but it is not anchored.
	newest := rep.Files[len(rep.Files)-1]
	if st, _ := os.Stat(newest); st.Size() == 0 { // rotated just before Close
		newest = rep.Files[len(rep.Files)-2]
	}
	if rep, err := audit.Verify(newest); err != nil || rep.Anchored || rep.Last != 30 {
		t.Fatalf("verify of the newest file alone: %+v %v", rep, err)
	}
	sorted := append([]string(nil), rep.Files...)
	if _, err := audit.Verify(append(sorted[:1:1], sorted[2:]...)...); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("verify without the second file: %v", err)
	}
}

func waitWritten(t *testing.T, c *counts, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		w := c.written
		c.mu.Unlock()
		if w >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines written, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A crash can tear the last line: the next open cuts it off and the chain
// goes on from the last whole line.
func TestTrailCutsATornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := open(t, path, audit.Options{})
	appendN(tr, 0, 3)
	_ = tr.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"seq":4,"time":"2026-01-15T10:30:00Z","event":"deliv`)
	_ = f.Close()
	if _, err := audit.Verify(path); err == nil {
		t.Fatal("a torn last line verified")
	}
	tr = open(t, path, audit.Options{})
	appendN(tr, 3, 2)
	_ = tr.Close()
	rep, err := audit.Verify(path)
	if err != nil || rep.Lines != 5 {
		t.Fatalf("after the cut: %+v %v", rep, err)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(`"event":"deliv"`)) || bytes.Count(b, []byte("\n")) != 5 {
		t.Fatalf("file:\n%s", b)
	}
	// Not a trail at all: refused, never overwritten.
	other := filepath.Join(t.TempDir(), "notes.txt")
	_ = os.WriteFile(other, []byte("hello\n"), 0o600)
	if _, err := audit.Open(other, audit.Options{}); err == nil {
		t.Fatal("opened a file that is not an audit trail")
	}
}

// Append never blocks: a full queue drops the line, counts it, and the
// trail records the gap.
func TestTrailDropsWhenFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	c := new(counts)
	tr := open(t, path, audit.Options{Queue: 1, Observer: c})
	done := make(chan struct{})
	go func() {
		appendN(tr, 0, 2000)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Append blocked")
	}
	_ = tr.Close()
	c.mu.Lock()
	written, dropped := c.written, c.dropped
	c.mu.Unlock()
	rep, err := audit.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if dropped > 0 {
		b, _ := os.ReadFile(path)
		if !bytes.Contains(b, []byte(`"event":"audit_gap","lost":`)) {
			t.Fatalf("%d dropped and no gap recorded", dropped)
		}
	}
	if rep.Lines != written || written+dropped < 2000 {
		t.Fatalf("%d lines, %d written, %d dropped", rep.Lines, written, dropped)
	}
	tr.Append("after_close", nil) // a no-op, not a panic
}

// One writer per trail: a second Open of the same file (another process,
// or a second trail in this one) is refused, never interleaved.
func TestTrailIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := open(t, path, audit.Options{})
	defer tr.Close()
	if _, err := audit.Open(path, audit.Options{}); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
}
