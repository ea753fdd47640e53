package inbound

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// appStandIn is the app behind the gateway: it records every delivery and
// answers with the status it is told to.
type appStandIn struct {
	srv     *httptest.Server
	clock   *clock.Fake
	status  atomic.Int32
	hold    chan struct{} // when set, requests wait for it to close
	active  atomic.Int32
	maxSeen atomic.Int32
	mu      sync.Mutex
	got     []delivery
	arrived chan delivery
}

type delivery struct {
	header http.Header
	body   string
	at     time.Time // fake time of arrival
}

func newAppStandIn(t *testing.T, c *clock.Fake, hold chan struct{}) *appStandIn {
	a := &appStandIn{clock: c, hold: hold, arrived: make(chan delivery, 1000)}
	a.status.Store(http.StatusNoContent)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.active.Add(1)
		defer a.active.Add(-1)
		for {
			m := a.maxSeen.Load()
			if n <= m || a.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		d := delivery{header: r.Header.Clone(), body: string(body), at: a.clock.Now()}
		if a.hold != nil {
			select {
			case <-a.hold:
			case <-r.Context().Done():
				return
			}
		}
		a.mu.Lock()
		a.got = append(a.got, d)
		a.mu.Unlock()
		a.arrived <- d
		status := int(a.status.Load())
		if status == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *appStandIn) url() *url.URL {
	u, _ := url.Parse(a.srv.URL + "/payments/modulus")
	return u
}

func (a *appStandIn) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-a.arrived:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery arrived")
		return delivery{}
	}
}

// hookLog is an Observer that records the Deliverer's reports.
type hookLog struct {
	NopObserver
	mu        sync.Mutex
	outcomes  []string
	delivered []time.Duration
	dead      []string // reasons
}

func (h *hookLog) Attempted(o string, _ time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outcomes = append(h.outcomes, o)
}

func (h *hookLog) Delivered(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delivered = append(h.delivered, d)
}

func (h *hookLog) DeadLettered(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dead = append(h.dead, reason)
}

func (h *hookLog) snapshot() ([]string, []time.Duration, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.outcomes...), append([]time.Duration(nil), h.delivered...), len(h.dead)
}

func (h *hookLog) deadReasons() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.dead...)
}

type delivererFixture struct {
	d      *Deliverer
	spool  store.Spool
	clock  *clock.Fake
	hooks  *hookLog
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan struct{}
}

func startDeliverer(t *testing.T, spool store.Spool, c *clock.Fake, cfg DeliveryConfig, concurrency int) *delivererFixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	f := &delivererFixture{spool: spool, clock: c, hooks: &hookLog{}, logs: logs, done: make(chan struct{})}
	f.d = NewDeliverer(spool, DelivererOptions{Concurrency: concurrency, Clock: c, Logger: zap.New(core), Observer: f.hooks})
	if err := f.d.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.d.Run(ctx); close(f.done) }()
	t.Cleanup(f.stop)
	return f
}

func (f *delivererFixture) stop() {
	f.cancel()
	<-f.done
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func spoolEvent(id string, now time.Time, body string) store.SpoolEvent {
	return store.SpoolEvent{ID: id, Action: "QRPH_SUCCESS", Reference: "ORDER-" + id, Body: []byte(body),
		Received: now, RetryFrom: now, NextAttempt: now}
}

func pendingCount(t *testing.T, s store.Spool) int {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// The delivery carries the body verbatim and the documented headers, and
// its signature verifies with an HMAC computed here, independently of
// Signer, from the Standard Webhooks definition.
func TestDeliveryHeadersAndSignature(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, nil)
	keyBytes := []byte("TEST-ONLY-fake-signing-key-24b!!")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(keyBytes)
	signer, err := crypto.NewWebhookSigner("sign_secret", secret)
	if err != nil {
		t.Fatal(err)
	}
	spool := storetest.NewMemorySpool()
	received := c.Now()
	c.Advance(1500 * time.Millisecond)
	body := `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-1","amount":9800,"note":"é\u2028"}`
	ev := spoolEvent("evt_0000000000TESTSIGNATURE1", received, body)
	ev.ActivationCode = "TEST-0000-0000-0001"
	_ = spool.Put(context.Background(), ev)
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url(), Signer: signer}, 4)

	d := app.next(t)
	if d.body != body {
		t.Fatalf("body %q, want it verbatim", d.body)
	}
	h := d.header
	ts := strconv.FormatInt(c.Now().Unix(), 10)
	for name, want := range map[string]string{
		"Content-Type": "application/json", "Webhook-Id": ev.ID, "Webhook-Timestamp": ts, "Webhook-Attempt": "1",
		"Modulus-Activation-Code": "TEST-0000-0000-0001", "User-Agent": "qrphgate",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	mac := hmac.New(sha256.New, keyBytes)
	mac.Write([]byte(h.Get("Webhook-Id") + "." + h.Get("Webhook-Timestamp") + "." + d.body))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := h.Get("Webhook-Signature"); got != want {
		t.Fatalf("Webhook-Signature %q, independent HMAC gives %q", got, want)
	}
	eventually(t, "the event to be completed", func() bool { return pendingCount(t, spool) == 0 })
	outcomes, delivered, _ := f.hooks.snapshot()
	if len(outcomes) != 1 || outcomes[0] != OutcomeDelivered || len(delivered) != 1 || delivered[0] != 1500*time.Millisecond {
		t.Fatalf("hooks: %v %v", outcomes, delivered)
	}

	// Without a signer and an activation code, neither header is sent.
	if err := f.d.Configure(DeliveryConfig{URL: app.url()}); err != nil {
		t.Fatal(err)
	}
	_ = spool.Put(context.Background(), spoolEvent("evt_0000000000TESTSIGNATURE2", c.Now(), `{}`))
	f.d.Wake()
	d = app.next(t)
	if d.header.Get("Webhook-Signature") != "" || d.header.Get("Modulus-Activation-Code") != "" {
		t.Fatalf("unexpected headers %v", d.header)
	}
}

// The delivered log carries the app's status and the attempt's latency
// (fake time spent while the app held the request).
func TestDeliveredLogHasStatusAndLatency(t *testing.T) {
	c := clock.NewFake(time.Time{})
	hold := make(chan struct{})
	app := newAppStandIn(t, c, hold)
	spool := storetest.NewMemorySpool()
	_ = spool.Put(context.Background(), spoolEvent("evt_0000000000TESTLATENCY01", c.Now(), `{}`))
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url()}, 1)
	eventually(t, "the attempt to reach the app", func() bool { return app.active.Load() == 1 })
	c.Advance(300 * time.Millisecond)
	close(hold)
	app.next(t)
	eventually(t, "the delivered log", func() bool { return f.logs.FilterMessage("webhook delivered").Len() == 1 })
	fields := f.logs.FilterMessage("webhook delivered").All()[0].ContextMap()
	if fields["status"] != int64(http.StatusNoContent) || fields["latency"] != 300*time.Millisecond || fields["event_id"] != "evt_0000000000TESTLATENCY01" {
		t.Fatalf("delivered log fields %v", fields)
	}
}

// An event whose reference holds a C1 control (spooled by a version that
// accepted one) is logged with it escaped: no log field carries a raw NEL
// or line separator.
func TestDeliveryLogsEscapeControlCharacters(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, nil)
	spool := storetest.NewMemorySpool()
	ev := spoolEvent("evt_0000000000TESTLOGSAFE001", c.Now(), `{}`)
	ev.Reference, ev.Action = "ORDER-1\u0085forged", "QRPH_SUCCESS\u2028x"
	_ = spool.Put(context.Background(), ev)
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url()}, 1)
	app.next(t)
	eventually(t, "the delivered log", func() bool { return f.logs.FilterMessage("webhook delivered").Len() == 1 })
	fields := f.logs.FilterMessage("webhook delivered").All()[0].ContextMap()
	if fields["reference"] != `ORDER-1\u0085forged` || fields["action"] != `QRPH_SUCCESS\u2028x` {
		t.Fatalf("logged reference %q, action %q: want them escaped", fields["reference"], fields["action"])
	}
}

// The retry schedule with a fake clock and fixed jitter: the ceiling
// doubles from Base to Max, the last attempt lands on the window's end,
// then the event is a dead letter; a replay delivers it with the same id.
func TestDeliveryBackoffScheduleDeadLetterAndReplay(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, nil)
	app.status.Store(http.StatusInternalServerError)
	spool := storetest.NewMemorySpool()
	t0 := c.Now()
	_ = spool.Put(context.Background(), spoolEvent("evt_0000000000TESTSCHEDULE01", t0, `{"n":1}`))
	cfg := DeliveryConfig{URL: app.url(), RedeliverFor: 30 * time.Second,
		Backoff: proxy.Backoff{Base: time.Second, Max: 8 * time.Second, Rand: func() float64 { return 0.5 }}}
	f := startDeliverer(t, spool, c, cfg, 2)

	// Attempt k+1 follows attempt k by Delay(k-1) = 0.5 * min(8s, 1s * 2^(k-1)).
	wantOffsets := []time.Duration{0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 30000}
	for i, off := range wantOffsets {
		d := app.next(t)
		if got := d.at.Sub(t0); got != off*time.Millisecond {
			t.Fatalf("attempt %d at +%v, want +%v", i+1, got, off*time.Millisecond)
		}
		if d.header.Get("Webhook-Attempt") != strconv.Itoa(i+1) {
			t.Fatalf("attempt %d sent Webhook-Attempt %q", i+1, d.header.Get("Webhook-Attempt"))
		}
		if i+1 == len(wantOffsets) {
			break
		}
		next := t0.Add(wantOffsets[i+1] * time.Millisecond)
		eventually(t, "the retry to be scheduled", func() bool {
			due, ok, _ := spool.NextDue(context.Background())
			return ok && due.Equal(next)
		})
		c.Advance(next.Sub(c.Now()))
	}
	eventually(t, "the dead letter", func() bool {
		st, _ := spool.Stats(context.Background())
		return st.DeadLetters == 1 && st.Pending == 0
	})
	dl, _ := spool.DeadLetters(context.Background(), 10)
	if len(dl) != 1 || dl[0].Attempts != 11 || dl[0].LastError != "HTTP 500" || !dl[0].DeadAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("dead letter %+v", dl)
	}
	if reasons := f.hooks.deadReasons(); len(reasons) != 1 || reasons[0] != DeadLetterExpired {
		t.Fatalf("DeadLettered hook called with %v", reasons)
	}
	// Ten retried failures: warnings for the first and the tenth only.
	failures := f.logs.FilterMessage("webhook delivery failed; will retry")
	if failures.Len() != 10 || failures.FilterLevelExact(zapcore.WarnLevel).Len() != 2 {
		t.Fatalf("%d failure logs, %d at warn; want 10 and 2", failures.Len(), failures.FilterLevelExact(zapcore.WarnLevel).Len())
	}
	select {
	case d := <-app.arrived:
		t.Fatalf("a dead letter was delivered: attempt %s", d.header.Get("Webhook-Attempt"))
	case <-time.After(50 * time.Millisecond):
	}

	app.status.Store(http.StatusOK)
	c.Advance(time.Hour)
	if _, err := f.d.Replay(context.Background(), "evt_0000000000TESTSCHEDULE01", "test"); err != nil {
		t.Fatal(err)
	}
	d := app.next(t)
	if d.header.Get("Webhook-Id") != "evt_0000000000TESTSCHEDULE01" || d.header.Get("Webhook-Attempt") != "12" {
		t.Fatalf("replay delivered id %q attempt %q", d.header.Get("Webhook-Id"), d.header.Get("Webhook-Attempt"))
	}
	eventually(t, "the replayed event to be completed", func() bool {
		st, _ := spool.Stats(context.Background())
		return st.Pending == 0 && st.DeadLetters == 0
	})
	if _, err := f.d.Replay(context.Background(), "evt_0000000000TESTSCHEDULE01", "test"); err != store.ErrNotFound {
		t.Fatalf("second replay: %v", err)
	}
}

// Anything but a 2xx is a failure: 4xx, 5xx, redirects, timeouts and
// refused connections are all retried, each with its outcome.
func TestDeliveryFailuresAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name, outcome, detail string
		status                int
		timeout               time.Duration
		refused               bool
	}{
		{name: "4xx", status: 400, outcome: OutcomeRejected, detail: "HTTP 400"},
		{name: "5xx", status: 503, outcome: OutcomeRejected, detail: "HTTP 503"},
		{name: "redirect", status: 302, outcome: OutcomeRejected, detail: "HTTP 302"},
		{name: "timeout", timeout: 50 * time.Millisecond, outcome: OutcomeTimeout, detail: "no answer within 50ms"},
		{name: "refused", refused: true, outcome: OutcomeError, detail: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(time.Time{})
			var hold chan struct{}
			if tc.timeout > 0 {
				hold = make(chan struct{}) // never closed: the app never answers
			}
			app := newAppStandIn(t, c, hold)
			app.status.Store(int32(tc.status))
			u := app.url()
			if tc.refused {
				app.srv.Close()
			}
			spool := storetest.NewMemorySpool()
			_ = spool.Put(context.Background(), spoolEvent("evt_1", c.Now(), `{}`))
			f := startDeliverer(t, spool, c, DeliveryConfig{URL: u, Timeout: tc.timeout}, 1)
			// Retried: due again within the first backoff ceiling, not at the
			// end of the claim's lease.
			eventually(t, "the failed attempt to be recorded", func() bool {
				outcomes, _, _ := f.hooks.snapshot()
				due, ok, _ := spool.NextDue(context.Background())
				return len(outcomes) == 1 && ok && due.Before(c.Now().Add(DefaultRetryBackoff.Base+time.Nanosecond))
			})
			outcomes, _, _ := f.hooks.snapshot()
			if outcomes[0] != tc.outcome {
				t.Fatalf("outcome %q, want %q", outcomes[0], tc.outcome)
			}
			f.stop()
			evs, _ := spool.Claim(context.Background(), c.Now().Add(time.Hour), time.Minute, 1)
			if len(evs) != 1 || evs[0].Attempts != 1 || !strings.Contains(evs[0].LastError, tc.detail) {
				t.Fatalf("event after the failure: %+v", evs)
			}
		})
	}
}

func TestDeliveryConcurrencyIsBounded(t *testing.T) {
	c := clock.NewFake(time.Time{})
	hold := make(chan struct{})
	app := newAppStandIn(t, c, hold)
	spool := storetest.NewMemorySpool()
	for i := 0; i < 10; i++ {
		_ = spool.Put(context.Background(), spoolEvent("evt_"+strconv.Itoa(i), c.Now(), `{}`))
	}
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url()}, 3)
	// maxSeen below catches a fourth delivery started at any time; here the
	// worker's own count must agree while all three are held.
	eventually(t, "three deliveries in flight", func() bool { return app.active.Load() == 3 })
	if n := f.d.InFlight(); n != 3 || app.active.Load() != 3 {
		t.Fatalf("%d in flight, %d at the app; want 3", n, app.active.Load())
	}
	close(hold)
	eventually(t, "every event delivered", func() bool { return pendingCount(t, spool) == 0 })
	if m := app.maxSeen.Load(); m != 3 {
		t.Fatalf("the app saw %d concurrent deliveries, want at most (and at some point) 3", m)
	}
}

// Stopping the worker cancels attempts under way without counting them;
// the event stays pending for the next worker.
func TestDeliveryStopsCleanly(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, make(chan struct{}))
	spool := storetest.NewMemorySpool()
	_ = spool.Put(context.Background(), spoolEvent("evt_1", c.Now(), `{}`))
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url()}, 2)
	eventually(t, "the attempt to reach the app", func() bool { return app.active.Load() == 1 })
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	evs, _ := spool.Claim(context.Background(), c.Now().Add(2*time.Hour), time.Minute, 1)
	if len(evs) != 1 || evs[0].Attempts != 0 {
		t.Fatalf("after shutdown: %+v", evs)
	}
}

// A reload's new configuration applies to the next attempt.
func TestDeliveryFollowsReconfiguration(t *testing.T) {
	c := clock.NewFake(time.Time{})
	oldApp, newApp := newAppStandIn(t, c, nil), newAppStandIn(t, c, nil)
	spool := storetest.NewMemorySpool()
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: oldApp.url()}, 2)
	_ = spool.Put(context.Background(), spoolEvent("evt_1", c.Now(), `{}`))
	f.d.Wake()
	oldApp.next(t)
	if err := f.d.Configure(DeliveryConfig{URL: newApp.url()}); err != nil {
		t.Fatal(err)
	}
	_ = spool.Put(context.Background(), spoolEvent("evt_2", c.Now(), `{}`))
	f.d.Wake()
	if d := newApp.next(t); d.header.Get("Webhook-Id") != "evt_2" {
		t.Fatalf("new app got %q", d.header.Get("Webhook-Id"))
	}
	if err := f.d.Configure(DeliveryConfig{}); err == nil {
		t.Fatal("Configure accepted a config without a URL")
	}
}

func TestDeliveryLogsNoBody(t *testing.T) {
	c := clock.NewFake(time.Time{})
	app := newAppStandIn(t, c, nil)
	app.status.Store(500)
	spool := storetest.NewMemorySpool()
	_ = spool.Put(context.Background(), spoolEvent("evt_1", c.Now(), `{"secret":"`+payloadSecretID+`"}`))
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url()}, 1)
	app.next(t)
	eventually(t, "the failure log", func() bool { return f.logs.FilterMessage("webhook delivery failed; will retry").Len() == 1 })
	for _, e := range f.logs.All() {
		if line := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(line, payloadSecretID) {
			t.Fatalf("log line reveals the body: %s", line)
		}
	}
}
