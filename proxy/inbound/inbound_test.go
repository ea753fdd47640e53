package inbound

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

const (
	testWebhookKey  = "TEST-ONLY-fake-key-do-not-use-32"
	testRotatedKey  = "TEST-ONLY-rotated-key-not-real-2"
	testUnknownKey  = "TEST-ONLY-key-nobody-configured!"
	allowedIP       = "203.0.113.10"
	payloadSecretID = "PAYLOAD-MARKER-7f3c" // must never reach a log line
)

type inboundFixture struct {
	in      *Handler
	spool   *storetest.MemorySpool
	dedupe  store.Dedupe
	clock   *clock.Fake
	logs    *observer.ObservedLogs
	results []string
	mu      sync.Mutex
	woken   atomic.Int64
}

func newInboundFixture(t testing.TB, mutate func(*Config)) *inboundFixture {
	t.Helper()
	f := &inboundFixture{spool: storetest.NewMemorySpool(), clock: clock.NewFake(time.Time{})}
	f.dedupe = store.NewMemory(f.clock)
	core, logs := observer.New(zapcore.DebugLevel)
	f.logs = logs
	k1, _ := crypto.NewKey("decryption_key[1]", testWebhookKey, crypto.EncodingUTF8)
	k2, _ := crypto.NewKey("decryption_key[2]", testRotatedKey, crypto.EncodingUTF8)
	ring, err := crypto.NewKeyring(0, k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := policy.ParseIPAllowlist([]string{"203.0.113.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Keyring: ring, AllowIPs: allow, MaxBody: 4096, Spool: f.spool, Dedupe: f.dedupe, Clock: f.clock,
		Logger:     zap.New(core),
		OnAccepted: func() { f.woken.Add(1) },
		Observer:   receivedLog{f: f},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if f.in, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *inboundFixture) lastResult() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results) == 0 {
		return ""
	}
	return f.results[len(f.results)-1]
}

func seal(t testing.TB, key, plaintext string) string {
	t.Helper()
	k, err := crypto.NewKey("k", key, crypto.EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	e, err := crypto.NewEncrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.Encrypt([]byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func payloadJSON(action, ref string) string {
	return fmt.Sprintf(`{"action":%q,"referenceNumber":%q,"amount":9800,"currency":"PHP","note":%q}`, action, ref, payloadSecretID)
}

func envelope(field, tok string) string { return fmt.Sprintf(`{%q:%q}`, field, tok) }

func webhookRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/modulus", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// receivedLog is an Observer that records each webhook's result.
type receivedLog struct {
	NopObserver
	f *inboundFixture
}

func (r receivedLog) Received(result string, _ time.Duration) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.results = append(r.f.results, result)
}

type answer struct {
	status int
	code   string
	body   string
	header http.Header
}

func (f *inboundFixture) send(r *http.Request, ip string) answer {
	rec := httptest.NewRecorder()
	addr, _ := netip.ParseAddr(ip)
	f.in.ServeWebhook(rec, r, addr)
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return answer{rec.Code, body.Error.Code, rec.Body.String(), rec.Header()}
}

func (f *inboundFixture) pending(t *testing.T) int {
	t.Helper()
	st, err := f.spool.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// readCounter counts how much of a body was read.
type readCounter struct {
	r io.Reader
	n atomic.Int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Every rejection in the design's check order, with its exact status and
// code; several rows combine two faults to show which check comes first.
func TestInboundCheckOrder(t *testing.T) {
	good := seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-1"))
	tests := []struct {
		name   string
		ip     string
		req    func() *http.Request
		status int
		code   string
		mutate func(*Config)
	}{
		{name: "address not allowed", ip: "198.51.100.7", req: func() *http.Request { return webhookRequest(envelope("data", good)) }, status: 403, code: "forbidden_ip"},
		{name: "no address (unresolved)", ip: "", req: func() *http.Request { return webhookRequest(envelope("data", good)) }, status: 403, code: "forbidden_ip"},
		{name: "address checked before method", ip: "198.51.100.7", req: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }, status: 403, code: "forbidden_ip"},
		{name: "any allows every address", ip: "198.51.100.7", req: func() *http.Request { return webhookRequest(envelope("data", good)) }, status: 200,
			mutate: func(c *Config) { c.AllowIPs, _ = policy.ParseIPAllowlist([]string{"any"}) }},
		{name: "IPv4-mapped IPv6 address matches IPv4 prefix", ip: "::ffff:203.0.113.10", req: func() *http.Request { return webhookRequest(envelope("data", good)) }, status: 200},
		{name: "method", ip: allowedIP, req: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }, status: 405, code: "method_not_allowed"},
		{name: "method checked before content type", ip: allowedIP, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader("x"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, status: 405, code: "method_not_allowed"},
		{name: "content type text/plain", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(envelope("data", good))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, status: 415, code: "unsupported_media_type"},
		{name: "content type missing", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(envelope("data", good))
			r.Header.Del("Content-Type")
			return r
		}, status: 415, code: "unsupported_media_type"},
		{name: "content type with charset", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(envelope("data", good))
			r.Header.Set("Content-Type", "application/json; charset=utf-8")
			return r
		}, status: 200},
		{name: "content type checked before size", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(strings.Repeat("x", 5000))
			r.Header.Set("Content-Type", "application/xml")
			return r
		}, status: 415, code: "unsupported_media_type"},
		{name: "oversized chunked body", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(`{"data":"` + strings.Repeat("A", 5000) + `"}`)
			r.ContentLength = -1
			return r
		}, status: 413, code: "body_too_large"},
		{name: "not JSON", ip: allowedIP, req: func() *http.Request { return webhookRequest("data=" + good) }, status: 400, code: "bad_envelope"},
		{name: "neither data nor Token", ip: allowedIP, req: func() *http.Request { return webhookRequest(`{"payload":"x"}`) }, status: 400, code: "bad_envelope"},
		{name: "both data and Token", ip: allowedIP, req: func() *http.Request {
			return webhookRequest(fmt.Sprintf(`{"data":%q,"Token":%q}`, good, good))
		}, status: 400, code: "bad_envelope"},
		{name: "data repeated", ip: allowedIP, req: func() *http.Request {
			return webhookRequest(fmt.Sprintf(`{"data":%q,"data":%q}`, good, good))
		}, status: 400, code: "bad_envelope"},
		{name: "trailing garbage", ip: allowedIP, req: func() *http.Request { return webhookRequest(envelope("data", good) + "{}") }, status: 400, code: "bad_envelope"},
		{name: "empty token", ip: allowedIP, req: func() *http.Request { return webhookRequest(`{"data":""}`) }, status: 400, code: "bad_token"},
		{name: "not a JWE", ip: allowedIP, req: func() *http.Request { return webhookRequest(`{"data":"a.b.c"}`) }, status: 400, code: "bad_token"},
		{name: "alg none", ip: allowedIP, req: func() *http.Request {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","enc":"A256CBC-HS512"}`))
			parts := strings.SplitN(good, ".", 2)
			return webhookRequest(envelope("data", h+"."+parts[1]))
		}, status: 400, code: "bad_token"},
		{name: "zip header", ip: allowedIP, req: func() *http.Request {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF"}`))
			parts := strings.SplitN(good, ".", 2)
			return webhookRequest(envelope("data", h+"."+parts[1]))
		}, status: 400, code: "bad_token"},
		{name: "wrong key", ip: allowedIP, req: func() *http.Request {
			return webhookRequest(envelope("data", seal(t, testUnknownKey, payloadJSON("QRPH_SUCCESS", "ORDER-1"))))
		}, status: 400, code: "decrypt_failed"},
		{name: "payload without reference", ip: allowedIP, req: func() *http.Request {
			return webhookRequest(envelope("data", seal(t, testWebhookKey, `{"action":"QRPH_SUCCESS"}`)))
		}, status: 422, code: "invalid_payload"},
		{name: "payload checked before activation code", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(envelope("Token", seal(t, testWebhookKey, `[]`)))
			r.Header.Set("activation-code", "WRONG")
			return r
		}, status: 422, code: "invalid_payload", mutate: func(c *Config) { c.ActivationCodes = []string{"TEST-0000-0000-0001"} }},
		{name: "activation code not configured", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(envelope("data", good))
			r.Header.Set("activation-code", "TEST-0000-0000-0002")
			return r
		}, status: 403, code: "forbidden_activation_code", mutate: func(c *Config) { c.ActivationCodes = []string{"TEST-0000-0000-0001"} }},
		{name: "activation code missing", ip: allowedIP, req: func() *http.Request { return webhookRequest(envelope("data", good)) },
			status: 403, code: "forbidden_activation_code", mutate: func(c *Config) { c.ActivationCodes = []string{"TEST-0000-0000-0001"} }},
		{name: "activation code accepted", ip: allowedIP, req: func() *http.Request {
			r := webhookRequest(envelope("data", good))
			r.Header.Set("activation-code", "TEST-0000-0000-0001")
			return r
		}, status: 200, mutate: func(c *Config) { c.ActivationCodes = []string{"TEST-0000-0000-0001"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newInboundFixture(t, tc.mutate)
			a := f.send(tc.req(), tc.ip)
			if a.status != tc.status || a.code != tc.code {
				t.Fatalf("got %d %q, want %d %q (%s)", a.status, a.code, tc.status, tc.code, a.body)
			}
			wantResult, wantPending := tc.code, 0
			if tc.status == 200 {
				wantResult, wantPending = ResultAccepted, 1
				if a.body != receivedBody {
					t.Fatalf("body %q", a.body)
				}
			} else if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error content type %q", ct)
			}
			if got := f.lastResult(); got != wantResult {
				t.Fatalf("result reported %q, want %q", got, wantResult)
			}
			if n := f.pending(t); n != wantPending {
				t.Fatalf("%d events spooled, want %d", n, wantPending)
			}
			if tc.status == 405 && a.header.Get("Allow") != "POST" {
				t.Fatalf("405 without Allow: POST")
			}
		})
	}
}

// A declared length over max_body is refused before one byte is read.
func TestInboundOversizeIsRefusedUnread(t *testing.T) {
	f := newInboundFixture(t, nil)
	rc := &readCounter{r: strings.NewReader(strings.Repeat("x", 10000))}
	r := httptest.NewRequest(http.MethodPost, "/", rc)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = 10000
	if a := f.send(r, allowedIP); a.status != 413 {
		t.Fatalf("status %d", a.status)
	}
	if n := rc.n.Load(); n != 0 {
		t.Fatalf("read %d bytes of a body whose declared length was over the limit", n)
	}
	// Without a declared length, reading stops just past the limit.
	rc = &readCounter{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	r = httptest.NewRequest(http.MethodPost, "/", rc)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = -1
	if a := f.send(r, allowedIP); a.status != 413 {
		t.Fatalf("status %d", a.status)
	}
	if n := rc.n.Load(); n > 4096+32<<10 {
		t.Fatalf("read %d bytes of an unbounded body with max_body 4096", n)
	}
}

func TestInboundAcceptsAndSpoolsTheEvent(t *testing.T) {
	f := newInboundFixture(t, nil)
	pt := payloadJSON("QRPH_SUCCESS", "ORDER-42")
	r := webhookRequest(envelope("data", seal(t, testRotatedKey, pt)))
	r.Header.Set("activation-code", "MERCHANT_ABC_123")
	if a := f.send(r, allowedIP); a.status != 200 {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	evs, _ := f.spool.Claim(context.Background(), f.clock.Now(), time.Minute, 10)
	if len(evs) != 1 {
		t.Fatalf("%d events spooled", len(evs))
	}
	ev := evs[0]
	if string(ev.Body) != pt || ev.Action != "QRPH_SUCCESS" || ev.Reference != "ORDER-42" || ev.ActivationCode != "MERCHANT_ABC_123" {
		t.Fatalf("spooled %+v", ev)
	}
	if !strings.HasPrefix(ev.ID, "evt_") || !ev.Received.Equal(f.clock.Now()) || !ev.NextAttempt.Equal(f.clock.Now()) {
		t.Fatalf("spooled %+v", ev)
	}
	if f.woken.Load() != 1 {
		t.Fatal("OnAccepted was not called")
	}
	accepted := f.logs.FilterMessage("webhook accepted").All()
	if len(accepted) != 1 || accepted[0].ContextMap()["key"] != "decryption_key[2]" {
		t.Fatalf("the accept log must name the key that worked: %+v", accepted)
	}
}

// slowSpool takes d of the fake clock to store an event (an fsync).
type slowSpool struct {
	store.Spool
	clock *clock.Fake
	d     time.Duration
}

func (s slowSpool) Put(ctx context.Context, ev store.SpoolEvent) error {
	s.clock.Advance(s.d)
	return s.Spool.Put(ctx, ev)
}

// The accept log carries the answer's status and the latency from the
// request's arrival to the acknowledgment, the spool write included.
func TestInboundAcceptLogHasStatusAndLatency(t *testing.T) {
	f := newInboundFixture(t, func(c *Config) {
		c.Spool = slowSpool{Spool: c.Spool, clock: c.Clock.(*clock.Fake), d: 250 * time.Millisecond}
	})
	r := webhookRequest(envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-LAT"))))
	if a := f.send(r, allowedIP); a.status != 200 {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	accepted := f.logs.FilterMessage("webhook accepted").All()
	if len(accepted) != 1 {
		t.Fatalf("%d accept logs", len(accepted))
	}
	fields := accepted[0].ContextMap()
	if fields["status"] != int64(200) || fields["latency"] != 250*time.Millisecond || fields["reference"] != "ORDER-LAT" {
		t.Fatalf("accept log fields %v", fields)
	}
}

func TestInboundDeduplicates(t *testing.T) {
	f := newInboundFixture(t, nil)
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-7")))
	if a := f.send(webhookRequest(body), allowedIP); a.status != 200 || a.body != receivedBody {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	// The provider's retry, and a replay of the captured token.
	for i := 0; i < 2; i++ {
		a := f.send(webhookRequest(body), allowedIP)
		if a.status != 200 || a.body != receivedDuplicateBody || f.lastResult() != ResultDuplicate {
			t.Fatalf("copy %d: %d %s (%s)", i, a.status, a.body, f.lastResult())
		}
	}
	// A fresh token for the same event (re-encrypted by the provider) is
	// the same event.
	fresh := envelope("Token", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-7")))
	if a := f.send(webhookRequest(fresh), allowedIP); a.body != receivedDuplicateBody {
		t.Fatalf("re-encrypted copy: %s", a.body)
	}
	// Another action on the same reference is another event.
	other := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_DECLINED", "ORDER-7")))
	if a := f.send(webhookRequest(other), allowedIP); a.body != receivedBody {
		t.Fatalf("other action: %s", a.body)
	}
	if n := f.pending(t); n != 2 {
		t.Fatalf("%d events spooled, want 2", n)
	}
	// Past the window the pair is new again.
	f.clock.Advance(DefaultDedupeWindow + time.Minute)
	if a := f.send(webhookRequest(body), allowedIP); a.body != receivedBody {
		t.Fatalf("after the window: %s", a.body)
	}
}

// The activation-code header is an unauthenticated echo: a captured token
// replayed with another header, none, or the real code in another case is
// the same event, a duplicate, never a second delivery (issue 13).
func TestInboundReplayUnderAnotherHeaderIsADuplicate(t *testing.T) {
	f := newInboundFixture(t, nil)
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-1")))
	for i, code := range []string{"TEST-0000-0000-0001", "", "EVIL-0000-0000-0001", "test-0000-0000-0001"} {
		r := webhookRequest(body)
		if code != "" {
			r.Header.Set("activation-code", code)
		}
		a := f.send(r, allowedIP)
		want := receivedDuplicateBody
		if i == 0 {
			want = receivedBody
		}
		if a.status != 200 || a.body != want {
			t.Fatalf("header %q: %d %s, want %s", code, a.status, a.body, want)
		}
	}
	if n := f.pending(t); n != 1 {
		t.Fatalf("%d events spooled, want 1", n)
	}
}

// The merchant stays part of the key where it is authenticated: a payload
// that carries its activationCode (inside the JWE) keeps two merchants'
// equal references apart, whatever the headers say.
func TestInboundDedupeKeepsAuthenticatedMerchantsApart(t *testing.T) {
	f := newInboundFixture(t, nil)
	withMerchant := func(code string) string {
		return envelope("data", seal(t, testWebhookKey, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-1","activationCode":"`+code+`"}`))
	}
	for _, tc := range []struct{ merchant, header, want string }{
		{"A9X4-B7P2-Q6Z8-M3L5", "", receivedBody},
		{"Z1Z1-Y2Y2-X3X3-W4W4", "", receivedBody},
		{"A9X4-B7P2-Q6Z8-M3L5", "Z1Z1-Y2Y2-X3X3-W4W4", receivedDuplicateBody},
	} {
		r := webhookRequest(withMerchant(tc.merchant))
		if tc.header != "" {
			r.Header.Set("activation-code", tc.header)
		}
		if a := f.send(r, allowedIP); a.body != tc.want {
			t.Fatalf("merchant %s, header %q: %s, want %s", tc.merchant, tc.header, a.body, tc.want)
		}
	}
	if n := f.pending(t); n != 2 {
		t.Fatalf("%d events spooled, want one per merchant", n)
	}
}

func TestInboundConcurrentCopiesSpoolOnce(t *testing.T) {
	f := newInboundFixture(t, nil)
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-RACE")))
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := f.send(webhookRequest(body), allowedIP); a.status == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 30 || f.pending(t) != 1 {
		t.Fatalf("%d acknowledged, %d spooled; want 30 and 1", ok.Load(), f.pending(t))
	}
}

// failingSpool fails Put while fail is set.
type failingSpool struct {
	store.Spool
	fail atomic.Bool
}

func (s *failingSpool) Put(ctx context.Context, ev store.SpoolEvent) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	return s.Spool.Put(ctx, ev)
}

// A failed spool write answers 503 (so the provider retries) and drops the
// dedupe mark, so the retry is accepted instead of called a duplicate.
func TestInboundSpoolFailureUndoesTheDedupeMark(t *testing.T) {
	fs := &failingSpool{Spool: storetest.NewMemorySpool()}
	fs.fail.Store(true)
	f := newInboundFixture(t, func(c *Config) { c.Spool = fs })
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-9")))
	if a := f.send(webhookRequest(body), allowedIP); a.status != 503 || a.code != ResultSpoolUnavailable {
		t.Fatalf("failing spool: %d %q", a.status, a.code)
	}
	fs.fail.Store(false)
	if a := f.send(webhookRequest(body), allowedIP); a.status != 200 || a.body != receivedBody {
		t.Fatalf("the provider's retry after a failed write: %d %s", a.status, a.body)
	}
	st, _ := fs.Stats(context.Background())
	if st.Pending != 1 {
		t.Fatalf("%d spooled", st.Pending)
	}
}

type brokenDedupe struct{}

func (brokenDedupe) Add(context.Context, string, time.Duration) (bool, error) {
	return false, store.ErrUnavailable
}
func (brokenDedupe) Contains(context.Context, string) (bool, error) {
	return false, store.ErrUnavailable
}
func (brokenDedupe) Remove(context.Context, string) error { return store.ErrUnavailable }

// A de-duplication outage must not lose webhooks: they are accepted (a
// duplicate delivery is the lesser harm).
func TestInboundDedupeOutageFailsOpen(t *testing.T) {
	f := newInboundFixture(t, func(c *Config) { c.Dedupe = brokenDedupe{} })
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-10")))
	for i := 0; i < 2; i++ {
		if a := f.send(webhookRequest(body), allowedIP); a.status != 200 {
			t.Fatalf("status %d", a.status)
		}
	}
	if f.pending(t) != 2 {
		t.Fatalf("%d spooled, want 2", f.pending(t))
	}
}

// pendingDedupe answers every Add as another request's unconfirmed
// reservation (another replica is storing the same event).
type pendingDedupe struct{ brokenDedupe }

func (pendingDedupe) Add(context.Context, string, time.Duration) (bool, error) {
	return false, store.ErrPending
}

// A copy of an event another request is still storing is neither accepted
// nor called a duplicate: 503, so the provider retries and the retry is a
// duplicate if that store succeeded, or is accepted if it failed.
func TestInboundPendingReservationAsksForARetry(t *testing.T) {
	f := newInboundFixture(t, func(c *Config) { c.Dedupe = pendingDedupe{} })
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-PENDING")))
	a := f.send(webhookRequest(body), allowedIP)
	if a.status != 503 || a.code != ResultInProgress || f.lastResult() != ResultInProgress {
		t.Fatalf("copy of a pending event: %d %q (%s)", a.status, a.code, f.lastResult())
	}
	if n := f.pending(t); n != 0 {
		t.Fatalf("%d events spooled, want 0", n)
	}
}

// Keys, tokens and decrypted bodies never reach the logs, on any path.
func TestInboundLogsNoSecrets(t *testing.T) {
	f := newInboundFixture(t, func(c *Config) { c.ActivationCodes = []string{"TEST-0000-0000-0001"} })
	good := seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-11"))
	wrongKey := seal(t, testUnknownKey, payloadJSON("QRPH_SUCCESS", "ORDER-11"))
	noRef := seal(t, testWebhookKey, `{"action":"QRPH_SUCCESS","note":"`+payloadSecretID+`"}`)
	dupMember := seal(t, testWebhookKey, `{"action":"x","referenceNumber":"r","`+payloadSecretID+`":1,"`+payloadSecretID+`":2}`)
	for _, body := range []string{envelope("data", good), envelope("data", wrongKey), envelope("data", noRef), envelope("data", dupMember)} {
		for _, code := range []string{"TEST-0000-0000-0001", "nope"} {
			r := webhookRequest(body)
			r.Header.Set("activation-code", code)
			f.send(r, allowedIP)
		}
	}
	if len(f.logs.All()) < 4 {
		t.Fatalf("only %d log lines: the test would prove nothing", len(f.logs.All()))
	}
	for _, e := range f.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, secret := range []string{testWebhookKey, testRotatedKey, good, wrongKey, noRef, payloadSecretID, "9800"} {
			if strings.Contains(line, secret) {
				t.Fatalf("log line reveals %.20s…: %s", secret, line)
			}
		}
	}
	// A refused token is described by its shape, never shown.
	var described bool
	for _, e := range f.logs.FilterField(zap.String("result", ResultDecryptFailed)).All() {
		tok, _ := e.ContextMap()["token"].(string)
		described = described || strings.Contains(tok, "5 segments")
	}
	if !described {
		t.Fatal("the decrypt_failed log line does not describe the token")
	}
}

func TestNewInboundRequires(t *testing.T) {
	for _, cfg := range []Config{{}, {Keyring: &crypto.Keyring{}}, {Keyring: &crypto.Keyring{}, Spool: storetest.NewMemorySpool()}} {
		if _, err := New(cfg); err == nil {
			t.Fatalf("New(%+v) accepted an incomplete config", cfg)
		}
	}
}

func TestNewEventID(t *testing.T) {
	t0 := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewEventID(t0.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 30 || !strings.HasPrefix(id, "evt_") || strings.ContainsAny(id[4:], "ILOUilou") {
			t.Fatalf("malformed id %q", id)
		}
		if seen[id] || id <= prev {
			t.Fatalf("id %q repeats or does not sort after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}

// The accept log carries the provider's transaction id when the payload has one.
func TestInboundAcceptLogTransactionID(t *testing.T) {
	f := newInboundFixture(t, nil)
	pt := `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-43","transactionId":"a78efd32-de3b-4854-b599-11ae9f98f97e"}`
	if a := f.send(webhookRequest(envelope("data", seal(t, testRotatedKey, pt))), allowedIP); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	accepted := f.logs.FilterMessage("webhook accepted").All()
	if len(accepted) != 1 || accepted[0].ContextMap()["transaction_id"] != "a78efd32-de3b-4854-b599-11ae9f98f97e" || accepted[0].ContextMap()["reference"] != "ORDER-43" {
		t.Fatalf("accept log: %+v", accepted)
	}
}
