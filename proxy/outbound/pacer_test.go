package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// maxInWindow returns the most calls any sliding window of length w holds:
// for every call, those in (t-w, t].
func maxInWindow(times []time.Time, w time.Duration) int {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	best, lo := 0, 0
	for hi := range times {
		for !times[lo].After(times[hi].Add(-w)) {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(s ...int) []time.Time {
		var out []time.Time
		for _, x := range s {
			out = append(out, t0.Add(time.Duration(x)*time.Second))
		}
		return out
	}
	if got := maxInWindow(at(0, 59, 60, 61, 119), time.Minute); got != 3 {
		t.Fatalf("got %d, want 3 (59, 60, 61... and 60, 61, 119)", got)
	}
	if got := maxInWindow(at(0, 60, 120), time.Minute); got != 1 {
		t.Fatalf("a call at exactly t-60s has left the window: got %d", got)
	}
}

// The guarantee, as a property over a random arrival pattern with bursts,
// checked on the upstream call times the provider recorded: no 60-second
// sliding window ever carries more calls than rate_limit, and the budget is
// actually used (some window is full).
func TestPacingNeverExceedsSlidingWindow(t *testing.T) {
	const limit = 20
	h := newHarness(t, hopts{rate: policy.RateLimit{Requests: limit, Period: time.Minute}, maxWait: 45 * time.Second, maxQueue: 1000, fakeNow: true})
	rng := rand.New(rand.NewPCG(20260115, 3))
	var outstanding atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	seq := 0
	quiet := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for stable := 0; stable < 3; {
			if int64(h.clock.Timers()) == outstanding.Load() {
				stable++
			} else {
				stable = 0
			}
			if time.Now().After(deadline) {
				t.Fatalf("no quiescence: %d timers, %d outstanding", h.clock.Timers(), outstanding.Load())
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	for step := 0; step < 900; step++ { // 15 simulated minutes, one second a step
		n := 0
		switch r := rng.IntN(100); {
		case r < 3:
			n = 10 + rng.IntN(30) // a burst
		case r < 40:
			n = 1
		}
		for i := 0; i < n; i++ {
			seq++
			ref := "P-" + strconv.Itoa(seq)
			outstanding.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer outstanding.Add(-1)
				rec := h.do("POST", "/v1/pay/qr", createBody(ref))
				if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After: %s", rec.Body)
				}
				mu.Lock()
				statuses[rec.Code]++
				mu.Unlock()
			}()
		}
		quiet()
		h.clock.Advance(time.Second)
	}
	for outstanding.Load() > 0 {
		quiet()
		h.clock.Advance(time.Second)
	}
	wg.Wait()

	var times []time.Time
	for _, c := range h.fake.CallsTo("/v1/pay/qr") {
		times = append(times, c.Time)
	}
	got := maxInWindow(times, time.Minute)
	t.Logf("%d requests: %v; %d upstream calls; fullest 60s window %d", seq, statuses, len(times), got)
	if got > limit {
		t.Fatalf("a 60 s window carried %d upstream calls, limit %d", got, limit)
	}
	if got < limit {
		t.Fatalf("the fullest window carried %d calls: the budget of %d was never used in full", got, limit)
	}
	if statuses[200] != len(times) || statuses[200]+statuses[429] != seq {
		t.Fatalf("statuses %v for %d requests and %d upstream calls", statuses, seq, len(times))
	}
}

// A fixed-window counter admits 2×limit across its edge; the sliding
// window does not.
func TestPacingIsSlidingNotFixed(t *testing.T) {
	h := newHarness(t, hopts{rate: policy.RateLimit{Requests: 5, Period: time.Minute}, maxWait: time.Nanosecond, fakeNow: true})
	h.clock.Advance(59 * time.Second)
	for i := 0; i < 5; i++ {
		if rec := h.do("POST", "/v1/pay/qr", createBody(fmt.Sprintf("E-%d", i))); rec.Code != 200 {
			t.Fatalf("call %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	h.clock.Advance(2 * time.Second) // a fixed one-minute window would have reset
	rec := h.do("POST", "/v1/pay/qr", createBody("E-5"))
	if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 429 || e.Error.Code != CodeRateLimited {
		t.Fatalf("across the edge: %d %s", rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "58" {
		t.Fatalf("Retry-After %q, want 58 (when the first call leaves the window)", ra)
	}
	h.clock.Advance(58 * time.Second)
	if rec := h.do("POST", "/v1/pay/qr", createBody("E-5")); rec.Code != 200 {
		t.Fatalf("after the window slid: %d %s", rec.Code, rec.Body)
	}
	if n := len(h.fake.Calls()); n != 6 {
		t.Fatalf("%d upstream calls, want 6", n)
	}
}

func TestPacingQueuesUntilASlotFrees(t *testing.T) {
	h := newHarness(t, hopts{rate: policy.RateLimit{Requests: 2, Period: time.Minute}, maxWait: 70 * time.Second, fakeNow: true})
	start := h.clock.Now()
	for i := 0; i < 2; i++ {
		if rec := h.do("POST", "/v1/pay/qr", createBody(fmt.Sprintf("Q-%d", i))); rec.Code != 200 {
			t.Fatal(rec.Code)
		}
	}
	ch := h.async("POST", "/v1/pay/qr", createBody("Q-2"))
	h.waitTimers(1)
	h.clock.Advance(59 * time.Second)
	select {
	case rec := <-ch:
		t.Fatalf("admitted before a slot freed: %d", rec.Code)
	case <-time.After(50 * time.Millisecond):
	}
	h.waitTimers(1)
	h.clock.Advance(time.Second)
	if rec := recv(t, ch); rec.Code != 200 {
		t.Fatalf("queued call: %d %s", rec.Code, rec.Body)
	}
	calls := h.fake.CallsTo("/v1/pay/qr")
	if len(calls) != 3 || calls[2].Time.Sub(start) != time.Minute {
		t.Fatalf("third call at %v, want exactly 60s", calls[len(calls)-1].Time.Sub(start))
	}
	if h.obs.get("queue_wait") != 3 {
		t.Fatalf("queue waits observed %d", h.obs.get("queue_wait"))
	}
}

func TestPacingServesTheQueueInOrder(t *testing.T) {
	h := newHarness(t, hopts{rate: policy.RateLimit{Requests: 1, Period: time.Minute}, maxWait: 10 * time.Minute, maxQueue: 10, fakeNow: true})
	t0 := h.clock.Now()
	if rec := h.do("POST", "/v1/pay/qr", createBody("F-0")); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	var chans []<-chan *httptest.ResponseRecorder
	for i, ref := range []string{"F-A", "F-B", "F-C"} {
		chans = append(chans, h.async("POST", "/v1/pay/qr", createBody(ref)))
		h.waitTimers(i + 1) // each is queued before the next arrives
	}
	for i := range chans {
		h.waitHead(t0.Add(time.Duration(i+1)*time.Minute), len(chans)-i)
		h.clock.Advance(time.Minute)
		if rec := recv(t, chans[i]); rec.Code != 200 {
			t.Fatalf("call %d: %d", i, rec.Code)
		}
	}
	var order []string
	for _, c := range h.fake.CallsTo("/v1/pay/qr") {
		var p policy.CreateQR
		_ = json.Unmarshal(c.Plaintext, &p)
		order = append(order, p.MerchantReferenceNumber)
	}
	if fmt.Sprint(order) != "[F-0 F-A F-B F-C]" {
		t.Fatalf("served in order %v", order)
	}
}

func TestPacingRefusals(t *testing.T) {
	t.Run("hopeless wait is refused at once", func(t *testing.T) {
		h := newHarness(t, hopts{rate: policy.RateLimit{Requests: 1, Period: time.Minute}, maxWait: 10 * time.Second})
		h.do("POST", "/v1/pay/qr", createBody("R-0"))
		rec := h.do("POST", "/v1/pay/qr", createBody("R-1")) // synchronous: no clock advance needed
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 429 || e.Error.Code != CodeRateLimited || rec.Header().Get("Retry-After") != "60" {
			t.Fatalf("%d %s Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
		if h.obs.get("rejected:max_wait") != 1 {
			t.Fatalf("observer %v", h.obs.n)
		}
	})
	t.Run("full queue", func(t *testing.T) {
		h := newHarness(t, hopts{rate: policy.RateLimit{Requests: 1, Period: time.Minute}, maxWait: 5 * time.Minute, maxQueue: 2})
		h.do("POST", "/v1/pay/qr", createBody("R-0"))
		a := h.async("POST", "/v1/pay/qr", createBody("R-1"))
		h.waitTimers(1)
		b := h.async("POST", "/v1/pay/qr", createBody("R-2"))
		h.waitTimers(2)
		rec := h.do("POST", "/v1/pay/qr", createBody("R-3"))
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 429 || e.Error.Code != CodeQueueFull || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		t0 := h.clock.Now()
		h.clock.Advance(time.Minute)
		if ra := recv(t, a); ra.Code != 200 {
			t.Fatalf("head: %d", ra.Code)
		}
		h.waitHead(t0.Add(2*time.Minute), 1)
		h.clock.Advance(time.Minute)
		if rb := recv(t, b); rb.Code != 200 {
			t.Fatalf("second: %d", rb.Code)
		}
		if h.obs.get("rejected:queue_full") != 1 {
			t.Fatalf("observer %v", h.obs.n)
		}
	})
	t.Run("queued call refused once its slot is known to be too late", func(t *testing.T) {
		h := newHarness(t, hopts{rate: policy.RateLimit{Requests: 1, Period: time.Minute}, maxWait: 90 * time.Second, maxQueue: 10})
		h.do("POST", "/v1/pay/qr", createBody("R-0"))
		a := h.async("POST", "/v1/pay/qr", createBody("R-1")) // head: waits 60s for its slot
		h.waitTimers(1)
		b := h.async("POST", "/v1/pay/qr", createBody("R-2")) // its slot will be at 120s: past 90s
		h.waitTimers(2)
		h.clock.Advance(60 * time.Second)
		if ra := recv(t, a); ra.Code != 200 {
			t.Fatalf("head: %d", ra.Code)
		}
		rb := recv(t, b)
		if e := decodeErr(t, rb.Body.Bytes()); rb.Code != 429 || e.Error.Code != CodeRateLimited || rb.Header().Get("Retry-After") != "60" {
			t.Fatalf("second waiter: %d %s %q", rb.Code, rb.Body, rb.Header().Get("Retry-After"))
		}
		if n := len(h.fake.Calls()); n != 2 {
			t.Fatalf("%d upstream calls", n)
		}
	})
}

// waitHead waits until the head of the queue sleeps for the slot at `at`
// with `timers` timers pending on the fake clock, so that the next Advance
// cannot race the head's Take.
func (h *harness) waitHead(at time.Time, timers int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.out.cfg.Shared.Pacer.nextSlot.Load() != at.UnixNano() || h.clock.Timers() < timers {
		if time.Now().After(deadline) {
			h.t.Fatalf("head never slept for the slot at %v (next slot %v, %d timers)", at,
				time.Unix(0, h.out.cfg.Shared.Pacer.nextSlot.Load()), h.clock.Timers())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

type failingBudget struct{}

func (failingBudget) Take(context.Context, string, int, time.Duration) (store.Grant, error) {
	return store.Grant{}, fmt.Errorf("%w: redis take: connection refused", store.ErrUnavailable)
}

func (failingBudget) Usage(context.Context, string, time.Duration) (int, error) {
	return 0, fmt.Errorf("%w: redis usage", store.ErrUnavailable)
}

// An unreachable budget refuses the call: never send without a slot.
func TestPacerStoreUnavailable(t *testing.T) {
	p := NewPacer(failingBudget{}, "k", clock.NewFake(time.Time{}))
	_, err := p.Wait(context.Background(), policy.RateLimit{Requests: 1, Period: time.Minute}, 10, time.Now().Add(time.Hour))
	var e *proxy.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != CodeStoreUnavailable || !errors.Is(e, store.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
}
