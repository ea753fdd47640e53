package outbound

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
)

func newTestBreaker(t *testing.T, s BreakerSettings) (*Breaker, *clock.Fake, *[]string) {
	t.Helper()
	c := clock.NewFake(time.Time{})
	obs := new(transitionLog)
	b, err := NewBreaker("qr", s, c, obs)
	if err != nil {
		t.Fatal(err)
	}
	return b, c, &obs.log
}

// transitionLog is an Observer that keeps a breaker's transitions, as
// "closed->open".
type transitionLog struct {
	NopObserver
	mu  sync.Mutex
	log []string
}

func (l *transitionLog) BreakerChanged(_ string, from, to BreakerState) {
	l.mu.Lock()
	l.log = append(l.log, from.String()+"->"+to.String())
	l.mu.Unlock()
}

func mustAllow(t *testing.T, b *Breaker) func(Outcome) {
	t.Helper()
	done, ra, ok := b.Allow()
	if !ok {
		t.Fatalf("refused in state %s (retry after %v)", b.State(), ra)
	}
	return done
}

func TestBreakerTransitions(t *testing.T) {
	b, c, log := newTestBreaker(t, BreakerSettings{Failures: 3, Window: 30 * time.Second, Open: 20 * time.Second, Probes: 2})

	// Failures that leave the window do not count.
	mustAllow(t, b)(Failure)
	mustAllow(t, b)(Failure)
	c.Advance(30 * time.Second)
	mustAllow(t, b)(Failure)
	if b.State() != BreakerClosed {
		t.Fatal("opened on failures spread over more than the window")
	}
	// Successes and ignored outcomes do not count as failures.
	mustAllow(t, b)(Success)
	mustAllow(t, b)(Ignored)
	mustAllow(t, b)(Failure)
	if st := b.Status(); st.State != "closed" || st.FailuresInWindow != 2 {
		t.Fatalf("status %+v", st)
	}
	mustAllow(t, b)(Failure) // third within 30s
	if b.State() != BreakerOpen {
		t.Fatalf("state %s after 3 failures in the window", b.State())
	}

	// Open: refused with the time left.
	c.Advance(5 * time.Second)
	if _, ra, ok := b.Allow(); ok || ra != 15*time.Second {
		t.Fatalf("open: ok=%v retry after %v, want 15s", ok, ra)
	}
	if ra, ok := b.Peek(); ok || ra != 15*time.Second {
		t.Fatalf("peek: ok=%v %v", ok, ra)
	}

	// Half-open after Open: exactly Probes calls are admitted.
	c.Advance(15 * time.Second)
	p1 := mustAllow(t, b)
	p2 := mustAllow(t, b)
	if _, _, ok := b.Allow(); ok {
		t.Fatal("half-open admitted more than the probes")
	}
	p1(Success)
	if b.State() != BreakerHalfOpen {
		t.Fatal("closed after one of two probes")
	}
	if _, _, ok := b.Allow(); ok {
		t.Fatal("a finished probe's slot was reused: probes must all succeed first")
	}
	p2(Success)
	if b.State() != BreakerClosed {
		t.Fatalf("state %s after all probes succeeded", b.State())
	}

	// A failed probe opens it again for a full Open period.
	for i := 0; i < 3; i++ {
		mustAllow(t, b)(Failure)
	}
	c.Advance(20 * time.Second)
	probe := mustAllow(t, b)
	probe(Failure)
	if _, ra, ok := b.Allow(); ok || ra != 20*time.Second {
		t.Fatalf("after a failed probe: ok=%v retry after %v", ok, ra)
	}

	want := "[closed->open open->half-open half-open->closed closed->open open->half-open half-open->open]"
	if got := fmt.Sprint(*log); got != want {
		t.Fatalf("transitions %s\nwant        %s", got, want)
	}
}

func TestBreakerIgnoresStaleOutcomes(t *testing.T) {
	b, c, _ := newTestBreaker(t, BreakerSettings{Failures: 1, Window: time.Minute, Open: time.Minute, Probes: 1})
	slow := mustAllow(t, b) // admitted while closed, answers late
	mustAllow(t, b)(Failure)
	if b.State() != BreakerOpen {
		t.Fatal("not open")
	}
	c.Advance(time.Minute)
	probe := mustAllow(t, b)
	slow(Success) // from the closed generation: must not close the breaker
	if b.State() != BreakerHalfOpen {
		t.Fatalf("a stale success changed the state to %s", b.State())
	}
	probe(Success)
	if b.State() != BreakerClosed {
		t.Fatal("probe success did not close")
	}
}

func TestBreakerIgnoredProbeFreesItsSlot(t *testing.T) {
	b, c, _ := newTestBreaker(t, BreakerSettings{Failures: 1, Window: time.Minute, Open: time.Minute, Probes: 1})
	mustAllow(t, b)(Failure)
	c.Advance(time.Minute)
	mustAllow(t, b)(Ignored) // e.g. never sent
	mustAllow(t, b)(Success)
	if b.State() != BreakerClosed {
		t.Fatal("not closed")
	}
}

func TestBreakerSettingsValidate(t *testing.T) {
	for _, s := range []BreakerSettings{
		{Failures: 0, Window: 1, Open: 1, Probes: 1},
		{Failures: 1, Window: 0, Open: 1, Probes: 1},
		{Failures: 1, Window: 1, Open: 0, Probes: 1},
		{Failures: 1, Window: 1, Open: 1, Probes: 0},
	} {
		if _, err := NewBreaker("x", s, nil, nil); err == nil {
			t.Errorf("%v accepted", s)
		}
	}
}

// Through the gateway: 5xx, timeouts and connection errors trip the breaker,
// 4xx do not; open means an immediate 503 with Retry-After and no call.
func TestBreakerInTheGateway(t *testing.T) {
	h := newHarness(t, hopts{noRetries: true, timeout: 100 * time.Millisecond,
		breaker: BreakerSettings{Failures: 3, Window: time.Minute, Open: 30 * time.Second, Probes: 1}})
	// Answers that say nothing about the upstream's health do not count,
	// 429 included.
	h.fake.Fail(fakemodulus.Fault{Status: 400}, fakemodulus.Fault{Status: 404}, fakemodulus.Fault{Status: 422}, fakemodulus.Fault{Status: 429, RetryAfter: "1"})
	for i := 0; i < 4; i++ {
		if rec := h.do("POST", "/v1/pay/qr", createBody(fmt.Sprintf("B4-%d", i))); rec.Code/100 != 4 {
			t.Fatalf("4xx passthrough: %d", rec.Code)
		}
	}
	// 5xx, timeouts and connection failures do: three of them open it.
	h.fake.Fail(fakemodulus.Fault{Status: 500}, fakemodulus.Fault{Hang: true}, fakemodulus.Fault{ResetAfterRead: true})
	for i, want := range []int{502, 504, 502} {
		if rec := h.do("POST", "/v1/pay/qr", createBody(fmt.Sprintf("B5-%d", i))); rec.Code != want {
			t.Fatalf("failure %d: %d, want %d", i, rec.Code, want)
		}
	}
	calls := len(h.fake.Calls())
	rec := h.do("POST", "/v1/pay/qr", createBody("B-open"))
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 503 || e.Error.Code != CodeBreakerOpen || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("open breaker: %d %s Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if len(h.fake.Calls()) != calls {
		t.Fatal("an open breaker let a call through")
	}
	// Webhook management has its own breaker.
	if rec := h.do("GET", "/v1/webhooks", ""); rec.Code != 200 {
		t.Fatalf("webhooks while the QR breaker is open: %d", rec.Code)
	}
	h.clock.Advance(30 * time.Second)
	if rec := h.do("POST", "/v1/pay/qr", createBody("B-probe")); rec.Code != 200 {
		t.Fatalf("probe: %d %s", rec.Code, rec.Body)
	}
	if got := strings.Join(h.transitions(), " "); got != "qr:closed->open qr:open->half-open qr:half-open->closed" {
		t.Fatalf("transitions %q", got)
	}
	st := h.out.Status(t.Context())
	if st.Breakers["qr"].State != "closed" || st.Breakers["webhooks"].State != "closed" {
		t.Fatalf("status %+v", st.Breakers)
	}
}
