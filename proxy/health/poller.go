package health

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Probe is a check too slow or too costly to run per request (an fsync, a
// network round trip): the Poller runs it in the background and keeps its
// last result.
type Probe struct {
	// Name identifies the check in the report.
	Name string
	// Every is the interval between runs.
	Every time.Duration
	// Timeout bounds a run: past it the check reports Failure ("no answer
	// within ..."), and the run is not started again until it returns.
	Timeout time.Duration
	// Failure is the status of a run that timed out, and of the check
	// until its first run ends.
	Failure Status
	// Run checks once. Its context ends at Timeout or when the poller stops.
	Run func(ctx context.Context) (Status, string)
}

// maxPollerWait bounds the poller's sleep, so that probes that appear
// (a handler provisioned by a reload) are run soon without a Kick.
const maxPollerWait = 10 * time.Second

// Poller runs probes in the background, each at its own interval, never
// two runs of one probe at once, and keeps each one's last result. The set
// of probes is asked for anew at every round (probes come and go with the
// handlers of a config); the results of probes that went away are dropped.
type Poller struct {
	clock  clock.Clock
	probes func() []Probe
	kick   chan struct{}

	mu    sync.Mutex
	state map[string]*probeState
}

type probeState struct {
	result  Result
	due     time.Time
	running bool
}

// NewPoller returns a poller of the probes that probes returns at each
// round; clk nil is the real clock.
func NewPoller(clk clock.Clock, probes func() []Probe) *Poller {
	if clk == nil {
		clk = clock.Real()
	}
	return &Poller{clock: clk, probes: probes, kick: make(chan struct{}, 1), state: make(map[string]*probeState)}
}

// Kick makes the poller look for due and new probes now.
func (p *Poller) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	for {
		t := p.clock.NewTimer(p.round(ctx))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.kick:
			t.Stop()
		case <-t.C():
		}
	}
}

// round starts the due probes and returns how long to sleep.
func (p *Poller) round(ctx context.Context) time.Duration {
	probes := p.probes()
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	wait := maxPollerWait
	seen := make(map[string]bool, len(probes))
	for _, pr := range probes {
		if seen[pr.Name] {
			continue
		}
		seen[pr.Name] = true
		st := p.state[pr.Name]
		if st == nil {
			st = &probeState{result: Result{Status: pr.Failure, Message: "not checked yet", CheckedAt: now, Pending: true}}
			p.state[pr.Name] = st
		}
		if st.running {
			continue // it kicks the poller when it ends
		}
		if !now.Before(st.due) {
			st.running, st.due = true, now.Add(pr.Every)
			go p.run(ctx, pr)
		}
		wait = min(wait, st.due.Sub(now))
	}
	for name := range p.state {
		if !seen[name] {
			delete(p.state, name)
		}
	}
	return wait
}

// run runs one probe, bounded by its Timeout on the poller's clock.
func (p *Poller) run(ctx context.Context, pr Probe) {
	start := p.clock.Now()
	rctx, cancel := context.WithTimeout(ctx, pr.Timeout)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		st, msg := pr.Run(rctx)
		done <- Result{Status: st, Message: msg}
	}()
	timer := p.clock.NewTimer(pr.Timeout)
	defer timer.Stop()
	var res Result
	select {
	case res = <-done:
		res.CheckedAt = p.clock.Now()
		res.Took = res.CheckedAt.Sub(start)
	case <-timer.C():
		res = Result{Status: pr.Failure, Message: fmt.Sprintf("no answer within %s", pr.Timeout), CheckedAt: p.clock.Now(), Took: pr.Timeout}
		p.record(pr.Name, res, true)
		// Not again until this run returns: a hung fsync must not pile up.
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
		}
	case <-ctx.Done():
		return
	}
	p.record(pr.Name, res, false)
	p.Kick()
}

// record stores a probe's result; still says whether its run goes on.
func (p *Poller) record(name string, res Result, still bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.state[name]; st != nil {
		st.result, st.running = res, still
	}
}

// Results returns each current probe's last result.
func (p *Poller) Results() map[string]Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Result, len(p.state))
	for name, st := range p.state {
		out[name] = st.result
	}
	return out
}
