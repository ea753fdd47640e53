package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// What the payments ledger costs the two hot paths: the create-QR call
// and the webhook acknowledgment, each with the ledger off and on each
// back end, one call at a time (the latency a caller sees). Run with
//
//	go test ./caddymodule -run '^$' -bench Ledger -benchtime 2000x
//
// The Redis runs need the server on 127.0.0.1:6379 (keys under a prefix of
// their own, dropped afterwards).

// benchLedgerStores opens each back end; "off" has none.
func benchLedgerStores(b *testing.B) []struct {
	name string
	open func(b *testing.B) *ledger.Ledger
} {
	return []struct {
		name string
		open func(b *testing.B) *ledger.Ledger
	}{
		{"off", func(*testing.B) *ledger.Ledger { return nil }},
		{"memory", func(b *testing.B) *ledger.Ledger { return benchEngine(b, store.NewMemoryLedger()) }},
		{"file", func(b *testing.B) *ledger.Ledger {
			f, err := store.OpenFileLedger(filepath.Join(b.TempDir(), "ledger.db"), 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			return benchEngine(b, f)
		}},
		{"redis", func(b *testing.B) *ledger.Ledger {
			prefix := fmt.Sprintf("qrphgate-bench:%d:", time.Now().UnixNano())
			r, err := store.OpenRedis(context.Background(), "redis://127.0.0.1:6379/0", store.RedisOptions{Prefix: prefix})
			if err != nil {
				testenv.Missing(b, "redis on 127.0.0.1:6379: %v", err)
			}
			b.Cleanup(func() {
				_ = r.Close()
				redistest.DropKeys(b, prefix)
			})
			return benchEngine(b, store.NewRedisLedger(r))
		}},
	}
}

func benchEngine(b *testing.B, st store.Ledger) *ledger.Ledger {
	b.Helper()
	b.Cleanup(func() { _ = st.Close() })
	l, err := ledger.New(ledger.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// freshUpstream answers every create call with a new transaction id and a
// qrBody that starts as a PNG does, in memory (no network), sealing each
// answer.
type freshUpstream struct {
	enc *crypto.Encrypter
	seq atomic.Int64
}

func (u *freshUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	ans, _ := json.Marshal(map[string]string{
		"id":     fmt.Sprintf("a78efd32-de3b-4854-b599-%012d", u.seq.Add(1)),
		"qrBody": base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), bytes.Repeat([]byte{0x89}, 600)...)),
	})
	tok, err := u.enc.Encrypt(ans)
	if err != nil {
		return nil, err
	}
	body := []byte(`{"Token":"` + tok + `"}`)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// BenchmarkLedgerCreateQR: POST /v1/pay/qr through modulus_api's engine
// (validation, idempotency, rate slot, JWE both ways, an in-memory
// upstream), with the ledger's record of each QR.
func BenchmarkLedgerCreateQR(b *testing.B) {
	for _, bs := range benchLedgerStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			key, _ := crypto.NewKey("encryption_key", fakeEncryptionKey, crypto.EncodingUTF8)
			enc, _ := crypto.NewEncrypter(key)
			mem := store.NewMemory(nil)
			shared, err := outbound.NewShared(outbound.SharedOptions{Budget: mem, BudgetKey: "bench", Breaker: outbound.DefaultBreakerSettings,
				Clock: clock.Real(), Transport: &freshUpstream{enc: enc}})
			if err != nil {
				b.Fatal(err)
			}
			pol := policy.Default()
			env, _ := pol.Environment(policy.Sandbox)
			u, _ := url.Parse("https://qrph.sbx.moduluslabs.io")
			cfg := outbound.Config{Policy: pol, Environment: env, SecretKey: crypto.Secret(fakeSandboxKey), EncryptionKey: key,
				DefaultMerchant: fakeActivation, QRURL: u, RateLimit: policy.RateLimit{Requests: 1 << 30, Period: time.Second},
				MaxWait: time.Second, Timeout: time.Second, Budget: mem, Idempotency: mem, Shared: shared, Logger: zap.NewNop()}
			if l := bs.open(b); l != nil {
				cfg.Ledger = outboundLedger{l}
			}
			o, err := outbound.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest("POST", "/v1/pay/qr", strings.NewReader(
					`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"B-`+fmt.Sprint(i)+`"}`))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				o.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkLedgerWebhook: a webhook through modulus_webhook's engine up
// to its acknowledgment (checks, decryption, de-duplication, a memory
// spool), with the ledger's reconciliation of each result against its QR
// (recorded beforehand).
func BenchmarkLedgerWebhook(b *testing.B) {
	for _, bs := range benchLedgerStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			key, _ := crypto.NewKey("decryption_key[1]", testWebhookKey, crypto.EncodingUTF8)
			ring, _ := crypto.NewKeyring(0, key)
			enc, _ := crypto.NewEncrypter(key)
			allow, _ := policy.ParseIPAllowlist([]string{"any"})
			cfg := inbound.Config{Keyring: ring, AllowIPs: allow, Spool: storetest.NewMemorySpool(), Dedupe: store.NewMemory(nil), Logger: zap.NewNop()}
			l := bs.open(b)
			if l != nil {
				cfg.Ledger = inboundLedger{l}
			}
			in, err := inbound.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			bodies := make([]string, b.N)
			now := time.Now()
			for i := range bodies {
				id := fmt.Sprintf("tx-%09d", i)
				if l != nil {
					if err := l.Record(context.Background(), ledger.QR{ID: id, ActivationCode: fakeActivation, Reference: "B-" + id,
						Amount: 50000, Currency: "PHP", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
						b.Fatal(err)
					}
				}
				tok, _ := enc.Encrypt([]byte(`{"action":"QRPH_SUCCESS","transactionId":"` + id + `","referenceNumber":"B-` + id + `","amount":50000,"currency":"PHP"}`))
				bodies[i] = `{"data":"` + tok + `"}`
			}
			addr := netip.MustParseAddr("203.0.113.10")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(http.MethodPost, "/webhooks/modulus", strings.NewReader(bodies[i]))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				in.ServeWebhook(w, r, addr)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
