package health

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/e2e"
)

// switchable is a probe whose outcome the test sets; block makes its runs
// hang until released.
type switchable struct {
	mu      sync.Mutex
	status  Status
	msg     string
	runs    atomic.Int64
	block   chan struct{}
	running atomic.Int64
}

func (s *switchable) set(st Status, msg string) {
	s.mu.Lock()
	s.status, s.msg = st, msg
	s.mu.Unlock()
}

func (s *switchable) run(ctx context.Context) (Status, string) {
	s.running.Add(1)
	defer s.running.Add(-1)
	s.runs.Add(1)
	s.mu.Lock()
	block := s.block
	st, msg := s.status, s.msg
	s.mu.Unlock()
	if block != nil {
		<-block
	}
	return st, msg
}

func startPoller(t *testing.T, clk *clock.Fake, probes func() []Probe) *Poller {
	t.Helper()
	p := NewPoller(clk, probes)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// A probe runs at once and then every interval, never per read of the
// results; a dependency that breaks turns the check to its failure status
// at the next run, and back when it is repaired.
func TestPollerFollowsTheDependency(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := &switchable{status: OK, msg: "fine"}
	p := startPoller(t, clk, func() []Probe {
		return []Probe{{Name: "spool", Every: 10 * time.Second, Timeout: 2 * time.Second, Failure: Unavailable, Run: s.run}}
	})
	result := func() Result { return p.Results()["spool"] }
	e2e.WaitFor(t, 10*time.Second, "the first run", func() bool { return result().Status == OK && s.runs.Load() == 1 })
	for i := 0; i < 100; i++ {
		_ = p.Results()
	}
	if s.runs.Load() != 1 {
		t.Fatalf("reading results ran the probe %d times", s.runs.Load())
	}
	s.set(Unavailable, "disk full")
	clk.Advance(5 * time.Second)
	if result().Status != OK {
		t.Fatal("the probe ran before its interval")
	}
	clk.WaitForTimers(1, 5*time.Second)
	clk.Advance(5 * time.Second)
	e2e.WaitFor(t, 10*time.Second, "the broken dependency to show", func() bool { return result().Status == Unavailable })
	if r := result(); r.Message != "disk full" || !r.CheckedAt.Equal(clk.Now()) {
		t.Fatalf("result %+v at %v", r, clk.Now())
	}
	s.set(OK, "fine")
	clk.WaitForTimers(1, 5*time.Second)
	clk.Advance(10 * time.Second)
	e2e.WaitFor(t, 10*time.Second, "the repaired dependency to show", func() bool { return result().Status == OK })
}

// Until its first run ends a check reports its failure status; a run past
// its timeout reports the failure status too, and the probe is not started
// again while that run hangs.
func TestPollerTimeoutAndPending(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := &switchable{status: OK, block: make(chan struct{})}
	p := startPoller(t, clk, func() []Probe {
		return []Probe{{Name: "store", Every: time.Second, Timeout: 2 * time.Second, Failure: Unavailable, Run: s.run}}
	})
	e2e.WaitFor(t, 10*time.Second, "the first run to start", func() bool { return s.running.Load() == 1 })
	if r := p.Results()["store"]; r.Status != Unavailable || r.Message != "not checked yet" || !r.Pending {
		t.Fatalf("pending result %+v", r)
	}
	// The poller's sleep and the run's timeout.
	clk.WaitForTimers(2, 5*time.Second)
	clk.Advance(2 * time.Second)
	e2e.WaitFor(t, 10*time.Second, "the timeout", func() bool { return strings.Contains(p.Results()["store"].Message, "no answer within 2s") })
	for i := 0; i < 5; i++ {
		clk.Advance(time.Second)
	}
	if n := s.runs.Load(); n != 1 {
		t.Fatalf("a hung probe was started %d times", n)
	}
	close(s.block) // later runs pass through the closed channel
	clk.WaitForTimers(1, 5*time.Second)
	clk.Advance(time.Second)
	e2e.WaitFor(t, 10*time.Second, "a run after the hung one returned", func() bool { return p.Results()["store"].Status == OK })
}

// Probes that go away (a handler of an older config) drop out of the
// results; new ones appear.
func TestPollerFollowsTheProbeSet(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	var mu sync.Mutex
	names := []string{"a", "b"}
	s := &switchable{status: OK}
	p := startPoller(t, clk, func() []Probe {
		mu.Lock()
		defer mu.Unlock()
		var ps []Probe
		for _, n := range names {
			ps = append(ps, Probe{Name: n, Every: time.Minute, Timeout: time.Second, Failure: Degraded, Run: s.run})
		}
		return ps
	})
	e2e.WaitFor(t, 10*time.Second, "two checks", func() bool { r := p.Results(); return r["a"].Status == OK && r["b"].Status == OK })
	mu.Lock()
	names = []string{"b", "c"}
	mu.Unlock()
	p.Kick()
	e2e.WaitFor(t, 10*time.Second, "the new set", func() bool {
		r := p.Results()
		_, hasA := r["a"]
		return !hasA && r["c"].Status == OK && len(r) == 2
	})
}

func TestReport(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	r := NewReport(now, map[string]Result{
		"spool":   {Status: OK, CheckedAt: now.Add(-3 * time.Second), Took: 4 * time.Millisecond},
		"breaker": {Status: Degraded, Message: "open", CheckedAt: now},
	})
	if r.Status != Degraded || r.HTTPStatus() != http.StatusOK || r.Checks["spool"].AgeSeconds != 3 || r.Checks["spool"].TookSeconds != 0.004 {
		t.Fatalf("report %+v", r)
	}
	r = NewReport(now, map[string]Result{"a": {Status: Degraded}, "b": {Status: Unavailable}, "c": {Status: OK}})
	if r.Status != Unavailable || r.HTTPStatus() != http.StatusServiceUnavailable {
		t.Fatalf("report %+v", r)
	}
	if r := NewReport(now, nil); r.Status != OK || r.Checks == nil {
		t.Fatalf("empty report %+v", r)
	}
}
