package outbound

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// cannedUpstream answers every create call with one precomputed token, in
// memory, so the benchmarks measure the gateway's own work.
type cannedUpstream struct{ body []byte }

func (c cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)), Request: r}, nil
}

// benchPNG is shaped like a 600-byte PNG: the signature, the header
// chunk's length, then filler.
var benchPNG = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), bytes.Repeat([]byte{0x89}, 584)...)

func benchOutbound(b *testing.B) *Handler {
	b.Helper()
	key, _ := crypto.NewKey("encryption_key", testEncryptionKey, crypto.EncodingUTF8)
	enc, _ := crypto.NewEncrypter(key)
	ans, _ := json.Marshal(map[string]string{"id": "a78efd32-de3b-4854-b599-11ae9f98f97e", "qrBody": base64.StdEncoding.EncodeToString(benchPNG)})
	tok, _ := enc.Encrypt(ans)
	mem := store.NewMemory(nil)
	lim := policy.RateLimit{Requests: 1 << 30, Period: time.Second}
	shared, err := NewShared(SharedOptions{Budget: mem, BudgetKey: "bench", Breaker: DefaultBreakerSettings,
		Clock: clock.Real(), Transport: cannedUpstream{body: []byte(`{"Token":"` + tok + `"}`)}})
	if err != nil {
		b.Fatal(err)
	}
	pol := policy.Default()
	env, _ := pol.Environment(policy.Sandbox)
	u, _ := url.Parse("https://qrph.sbx.moduluslabs.io")
	o, err := New(Config{Policy: pol, Environment: env, SecretKey: crypto.Secret(testSecretKey), EncryptionKey: key,
		DefaultMerchant: testActivationCode, QRURL: u, RateLimit: lim, MaxWait: time.Second, Timeout: time.Second,
		Budget: mem, Idempotency: mem, Shared: shared, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	return o
}

// BenchmarkCreateQR is the whole hot path of POST /v1/pay/qr except the
// network: decode, validate, idempotency claim, rate slot, breaker, JWE
// encrypt, JWE decrypt, answer.
func BenchmarkCreateQR(b *testing.B) {
	o := benchOutbound(b)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"B-` + strconv.FormatInt(seq.Add(1), 10) + `"}`
			r := httptest.NewRequest("POST", "/v1/pay/qr", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			o.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkCreateQRReplay is an idempotent replay: no crypto, no upstream.
func BenchmarkCreateQRReplay(b *testing.B) {
	o := benchOutbound(b)
	body := createBody("REPLAY-1")
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/pay/qr", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		o.ServeHTTP(w, r)
		return w
	}
	do()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w := do(); w.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
			b.Fatal("not replayed")
		}
	}
}

func BenchmarkPacerWait(b *testing.B) {
	p := NewPacer(store.NewMemory(nil), "k", clock.Real())
	lim := policy.RateLimit{Requests: 1 << 30, Period: time.Second}
	ctx := context.Background()
	deadline := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := p.Wait(ctx, lim, 0, deadline); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBreakerAllow(b *testing.B) {
	br, _ := NewBreaker("qr", DefaultBreakerSettings, clock.Real(), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done, _, ok := br.Allow()
			if !ok {
				b.Fatal("refused")
			}
			done(Success)
		}
	})
}
