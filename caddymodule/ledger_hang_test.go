package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// stuckLedgerStore never answers a write or a lookup, whatever its context
// says, until the test ends: a ledger store hung below its deadlines.
type stuckLedgerStore struct {
	store.Ledger
	release chan struct{}
}

func (s stuckLedgerStore) Insert(context.Context, store.LedgerRecord) (store.LedgerRecord, error) {
	<-s.release
	return store.LedgerRecord{}, errors.New("released")
}

func (s stuckLedgerStore) Get(context.Context, string) (store.LedgerRecord, error) {
	<-s.release
	return store.LedgerRecord{}, errors.New("released")
}

func (s stuckLedgerStore) ByReference(context.Context, string, int) ([]store.LedgerRecord, error) {
	<-s.release
	return nil, errors.New("released")
}

// A payments ledger whose store hangs holds neither a created QR nor a
// webhook's acknowledgment: both are answered 200, the ledger's part given
// up after its bound.
func TestHangingLedgerNeverHoldsAPayment(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	l, err := ledger.New(ledger.Config{Store: stuckLedgerStore{Ledger: store.NewMemoryLedger(), release: release},
		CallTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	answered := func(what string, serve func() int) {
		t.Helper()
		code := make(chan int, 1)
		go func() { code <- serve() }()
		select {
		case c := <-code:
			if c != http.StatusOK {
				t.Fatalf("%s answered %d", what, c)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s is held by the hanging ledger", what)
		}
	}

	key, _ := crypto.NewKey("encryption_key", fakeEncryptionKey, crypto.EncodingUTF8)
	enc, _ := crypto.NewEncrypter(key)
	mem := store.NewMemory(nil)
	shared, err := outbound.NewShared(outbound.SharedOptions{Budget: mem, BudgetKey: "hang", Breaker: outbound.DefaultBreakerSettings,
		Clock: clock.Real(), Transport: &freshUpstream{enc: enc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shared.Close)
	pol := policy.Default()
	env, _ := pol.Environment(policy.Sandbox)
	u, _ := url.Parse("https://qrph.sbx.moduluslabs.io")
	o, err := outbound.New(outbound.Config{Policy: pol, Environment: env, SecretKey: crypto.Secret(fakeSandboxKey), EncryptionKey: key,
		DefaultMerchant: fakeActivation, QRURL: u, RateLimit: policy.RateLimit{Requests: 100, Period: time.Second},
		MaxWait: time.Second, Timeout: time.Second, Budget: mem, Idempotency: mem, Shared: shared, Logger: zap.NewNop(),
		Ledger: outboundLedger{l}})
	if err != nil {
		t.Fatal(err)
	}
	answered("create-QR", func() int {
		r := httptest.NewRequest(http.MethodPost, "/v1/pay/qr", strings.NewReader(`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"HANG-1"}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		o.ServeHTTP(w, r)
		return w.Code
	})

	wkey, _ := crypto.NewKey("decryption_key[1]", testWebhookKey, crypto.EncodingUTF8)
	ring, _ := crypto.NewKeyring(0, wkey)
	allow, _ := policy.ParseIPAllowlist([]string{"any"})
	in, err := inbound.New(inbound.Config{Keyring: ring, AllowIPs: allow, Spool: storetest.NewMemorySpool(), Dedupe: store.NewMemory(nil),
		Logger: zap.NewNop(), Ledger: inboundLedger{l}})
	if err != nil {
		t.Fatal(err)
	}
	answered("the webhook", func() int {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/modulus", strings.NewReader(
			sealWebhook(t, `{"action":"QRPH_SUCCESS","transactionId":"tx-hang","referenceNumber":"HANG-1","amount":50000,"currency":"PHP"}`)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		in.ServeWebhook(w, r, netip.MustParseAddr("203.0.113.10"))
		return w.Code
	})
}
