package outbound

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Obviously fake test credentials.
const (
	testSecretKey      = "sk_test_FAKEsecretFAKEsecretFAKEsecret0000"
	testEncryptionKey  = "TEST-ONLY-fake-key-do-not-use-32"
	testActivationCode = "A9X4-B7P2-Q6Z8-M3L5"
	testOtherMerchant  = "Z1Z1-Y2Y2-X3X3-W4W4"
)

type hopts struct {
	env          string
	rate         policy.RateLimit
	maxWait      time.Duration
	maxQueue     int
	timeout      time.Duration
	retries      int
	noRetries    bool
	breaker      BreakerSettings
	authFailures int
	transport    http.RoundTripper
	noWebhooks   bool
	payload      string
	qrURL        string // overrides the fake's URL
	fakeNow      bool   // the fake provider stamps calls with the fake clock
	// idem, when set, wraps the idempotency store (to inject its faults).
	idem         func(store.Idempotency) store.Idempotency
	ledger       Ledger
	auditor      proxy.Auditor
	merchantRate policy.RateLimit
	merchantWin  proxy.Windows // counts merchantRate; a memory store when nil
}

type harness struct {
	t     *testing.T
	clock *clock.Fake
	fake  *fakemodulus.Server
	mem   *store.Memory
	out   *Handler
	logs  *observer.ObservedLogs
	obs   *recorder
}

func newHarness(t *testing.T, o hopts) *harness {
	t.Helper()
	h := &harness{t: t, clock: clock.NewFake(time.Time{}), obs: newRecorder()}
	fo := fakemodulus.Options{SecretKey: testSecretKey, EncryptionKey: []byte(testEncryptionKey)}
	if o.fakeNow {
		fo.Now = h.clock.Now
	}
	h.fake = fakemodulus.New(t, fo)
	h.mem = store.NewMemory(h.clock)
	if o.env == "" {
		o.env = policy.Sandbox
	}
	if o.rate.Requests == 0 {
		o.rate = policy.RateLimit{Requests: 1000, Period: time.Minute}
	}
	if o.maxWait == 0 {
		o.maxWait = 10 * time.Second
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	if o.retries == 0 && !o.noRetries {
		o.retries = 2
	}
	if o.breaker == (BreakerSettings{}) {
		o.breaker = DefaultBreakerSettings
	}
	pol := policy.Default()
	env, err := pol.Environment(o.env)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.NewKey("encryption_key", testEncryptionKey, crypto.EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	base := h.fake.URL
	if o.qrURL != "" {
		base = o.qrURL
	}
	qr, _ := url.Parse(base)
	var wh *url.URL
	if !o.noWebhooks {
		wh, _ = url.Parse(h.fake.URL)
	}
	shared, err := NewShared(SharedOptions{
		Budget: h.mem, BudgetKey: BudgetKey(o.env, AccountID(testSecretKey)), Breaker: o.breaker, Clock: h.clock,
		Transport: o.transport, Observer: h.obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shared.Close)
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	// Bound to the pacer's budget: a create call claims its key and takes
	// its slot in one step (store.ClaimTaker), as the gateway does.
	var idem store.Idempotency = h.mem.WithBudget(BudgetKey(o.env, AccountID(testSecretKey)))
	if o.idem != nil {
		idem = o.idem(h.mem)
	}
	var merchantLimiter *proxy.WindowLimiter
	if o.merchantRate.Requests > 0 {
		if o.merchantWin == nil {
			o.merchantWin = store.NewMemoryWindows()
		}
		merchantLimiter = proxy.NewWindowLimiter(o.merchantWin, "merchant", zap.New(core))
	}
	h.out, err = New(Config{
		Policy: pol, Environment: env, SecretKey: crypto.Secret(testSecretKey), EncryptionKey: key,
		DefaultMerchant: testActivationCode, Merchants: []string{testOtherMerchant},
		QRURL: qr, WebhooksURL: wh, WebhooksPayload: o.payload, RateLimit: o.rate, MaxWait: o.maxWait, MaxQueue: o.maxQueue,
		Timeout: o.timeout, Retries: o.retries, AuthFailures: o.authFailures,
		Budget: h.mem, Idempotency: idem, StoreKind: "memory", Shared: shared, Clock: h.clock,
		Logger: zap.New(core), Observer: h.obs, Ledger: o.ledger, Auditor: o.auditor,
		Backoff:           proxy.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second, Rand: func() float64 { return 0.5 }},
		MerchantRateLimit: o.merchantRate, MerchantLimiter: merchantLimiter,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// transitions are the breaker transitions the observer heard of, as
// "qr:closed->open".
func (h *harness) transitions() []string {
	h.obs.mu.Lock()
	defer h.obs.mu.Unlock()
	return append([]string(nil), h.obs.trans...)
}

// request builds an app request; headers are "Name: value" strings.
func request(method, path, body string, headers ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		r.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return r
}

// do serves one request synchronously.
func (h *harness) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.out.ServeHTTP(rec, request(method, path, body, headers...))
	return rec
}

// async serves a request in a goroutine (for calls that wait on the clock).
func (h *harness) async(method, path, body string, headers ...string) <-chan *httptest.ResponseRecorder {
	ch := make(chan *httptest.ResponseRecorder, 1)
	go func() { ch <- h.do(method, path, body, headers...) }()
	return ch
}

// waitTimers blocks until n timers wait on the fake clock.
func (h *harness) waitTimers(n int) {
	h.t.Helper()
	if !h.clock.WaitForTimers(n, 10*time.Second) {
		h.t.Fatalf("expected %d timers on the fake clock, have %d", n, h.clock.Timers())
	}
}

func recv(t *testing.T, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(20 * time.Second):
		t.Fatal("request did not finish")
		return nil
	}
}

func createBody(ref string) string {
	return `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"` + ref + `"}`
}

// recorder is an Observer that counts, and keeps the breaker transitions
// in order ("qr:closed->open").
type recorder struct {
	mu    sync.Mutex
	n     map[string]int
	trans []string
}

func newRecorder() *recorder { return &recorder{n: make(map[string]int)} }

func (r *recorder) inc(k string) {
	r.mu.Lock()
	r.n[k]++
	r.mu.Unlock()
}

func (r *recorder) get(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[k]
}

func (r *recorder) UpstreamCall(endpoint, outcome string, _ time.Duration) {
	r.inc("upstream:" + endpoint + ":" + outcome)
}
func (r *recorder) UpstreamRetry(endpoint, reason string) { r.inc("retry:" + endpoint + ":" + reason) }
func (r *recorder) QueueWait(time.Duration)               { r.inc("queue_wait") }
func (r *recorder) QueueRejected(reason string)           { r.inc("rejected:" + reason) }
func (r *recorder) IdempotentReplay()                     { r.inc("replay") }
func (r *recorder) IdempotencyConflict()                  { r.inc("conflict") }
func (r *recorder) CredentialsRejected()                  { r.inc("fuse") }
func (r *recorder) LimiterFailedOpen()                    { r.inc("limiter_failed_open") }
func (r *recorder) Response(endpoint string, status int, code string) {
	r.inc("response:" + endpoint + ":" + http.StatusText(status) + ":" + code)
}
func (r *recorder) BreakerChanged(upstream string, from, to BreakerState) {
	r.mu.Lock()
	r.trans = append(r.trans, upstream+":"+from.String()+"->"+to.String())
	r.mu.Unlock()
}
