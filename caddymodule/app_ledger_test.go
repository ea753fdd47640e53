package caddymodule

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/internal/apispec"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

func provisionApp(t *testing.T, js string) *App {
	t.Helper()
	a := new(App)
	if err := json.Unmarshal([]byte(js), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// The ledger outlives a reload that keeps its option; a config's settings
// apply only when it starts (a refused config changes nothing), and the
// ledger, its job and its status entry go with the last config using it.
func TestAppLedgerLifecycle(t *testing.T) {
	path := "file://" + t.TempDir() + "/ledger.db"
	running := provisionApp(t, `{"ledger":"`+path+`","expiry_grace":300000000000,"expiry_events":"on","ledger_retention":172800000000000}`)
	l := running.engine()
	if l == nil || l.Settings().Grace != ledger.DefaultGrace {
		t.Fatalf("settings before start: %+v", l.Settings())
	}
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	if s := l.Settings(); s.Grace != 5*time.Minute || !s.ExpiryEvents || s.Retention != 48*time.Hour || s.Emitter != nil {
		t.Fatalf("settings after start: %+v", s)
	}
	if currentLedger.Load() == nil || currentLedger.Load().engine != l {
		t.Fatal("the started ledger is not the admin API's")
	}
	if _, ok := status.snapshot()["ledger"]["file "+strings.TrimPrefix(path, "file://")]; !ok {
		t.Fatalf("no status entry: %v", status.snapshot()["ledger"])
	}

	refused := provisionApp(t, `{"ledger":"`+path+`","expiry_grace":0}`)
	if refused.engine() != l {
		t.Fatal("a second config on the same file got another ledger")
	}
	if err := refused.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if s := l.Settings(); s.Grace != 5*time.Minute {
		t.Fatalf("a refused config changed the settings: %+v", s)
	}

	next := provisionApp(t, `{"ledger":"`+path+`"}`)
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	if err := running.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if s := l.Settings(); s.Grace != ledger.DefaultGrace || s.ExpiryEvents {
		t.Fatalf("settings after the reload: %+v", s)
	}
	if err := l.Record(context.Background(), ledger.QR{ID: "tx-1", Reference: "R", CreatedAt: time.Now(), ExpiresAt: time.Now()}); err != nil {
		t.Fatalf("the ledger stopped with the old config: %v", err)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if currentLedger.Load() != nil {
		t.Fatal("a destroyed ledger is still the admin API's")
	}
	if _, ok := status.snapshot()["ledger"]["file "+strings.TrimPrefix(path, "file://")]; ok {
		t.Fatal("a destroyed ledger still reports its status")
	}
	// The file was closed: a new config opens it again and finds tx-1.
	again := provisionApp(t, `{"ledger":"`+path+`"}`)
	defer again.Cleanup()
	if tx, err := again.engine().Transaction(context.Background(), "tx-1"); err != nil || tx.Status != ledger.StatusPending {
		t.Fatalf("after reopening: %+v %v", tx, err)
	}
}

// GET /modulus/transactions: JSON pages with a cursor, filters, CSV, and
// clear refusals.
func TestAdminTransactions(t *testing.T) {
	// A grace longer than the QRs' age: the expiry job that Start runs
	// must not turn the pending ones expired under the listing.
	a := provisionApp(t, `{"expiry_grace":"48h"}`)
	defer a.Cleanup()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	l := a.engine()
	ctx := context.Background()
	now := time.Now()
	for i, ref := range []string{"ADM-1", "ADM-2", "ADM-3"} {
		created := now.Add(time.Duration(i-3) * time.Hour)
		if err := l.Record(ctx, ledger.QR{ID: "adm-" + ref, ActivationCode: "TEST-0000-0000-0001", Reference: ref, Amount: 100,
			Currency: "PHP", CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		err := handleTransactions(rec, httptest.NewRequest(http.MethodGet, "/modulus/transactions?"+query, nil))
		if err != nil {
			ae, _ := err.(caddy.APIError)
			rec.Code = ae.HTTPStatus
			rec.Body.WriteString(err.Error())
		}
		return rec
	}
	var page transactionsPage
	rec := get("limit=2&reference=")
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Transactions) != 2 || page.NextCursor == "" ||
		page.Transactions[0].Reference != "ADM-3" || page.Transactions[0].ActivationCode != "****-****-****-0001" {
		t.Fatalf("first page: %d %s", rec.Code, rec.Body)
	}
	// Operators see the merchant's last group, never a whole code.
	for _, q := range []string{"", "format=csv"} {
		if body := get(q).Body.String(); strings.Contains(body, "TEST-0000-0000-0001") || !strings.Contains(body, "****-****-****-0001") {
			t.Fatalf("%q: activation codes not masked:\n%s", q, body)
		}
	}
	rec = get("limit=2&cursor=" + page.NextCursor)
	page = transactionsPage{}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Transactions) != 1 || page.NextCursor != "" ||
		page.Transactions[0].Reference != "ADM-1" {
		t.Fatalf("second page: %d %s", rec.Code, rec.Body)
	}
	rec = get("since=150m&status=pending&format=csv")
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) != 3 || rows[1][2] != "ADM-3" || rows[2][2] != "ADM-2" {
		t.Fatalf("csv: %v %q %v", err, rows, rec.Header())
	}
	rec = get("format=csv&limit=1")
	if rec.Header().Get(headerNextCursor) == "" {
		t.Fatalf("a CSV page with more after it has no %s", headerNextCursor)
	}
	for _, q := range []string{"status=refunded", "limit=0", "limit=1001", "since=yesterday", "until=-1h", "format=xml", "cursor=zzz"} {
		if rec := get(q); rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
	rec = httptest.NewRecorder()
	if err := handleTransactions(rec, httptest.NewRequest(http.MethodPost, "/modulus/transactions", nil)); err == nil {
		t.Fatal("POST was answered")
	}
}

// What the real ledger answers for each kind of transaction is the
// payment status proxy/openapi.json describes.
func TestLedgerDocumentsMatchOpenAPI(t *testing.T) {
	spec := apispec.Load(t)
	l, err := ledger.New(ledger.Config{Store: store.NewMemoryLedger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	record := func(id string) {
		if err := l.Record(ctx, ledger.QR{ID: id, ActivationCode: fakeActivation, Reference: "DOC-" + id, Amount: 50000, Currency: "PHP",
			CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	settle := func(n ledger.Notification) {
		if _, err := l.Reconcile(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	record("pending")
	record("paid")
	settle(ledger.Notification{EventID: "evt_1", Action: "QRPH_SUCCESS", TransactionID: "paid", Reference: "DOC-paid", Amount: 50000, HasAmount: true, Currency: "PHP"})
	record("flagged")
	settle(ledger.Notification{EventID: "evt_2", Action: "QRPH_DECLINED", TransactionID: "flagged", Amount: 1, HasAmount: true, Currency: "usd"})
	settle(ledger.Notification{EventID: "evt_3", Action: "QRPH_SUCCESS", TransactionID: "orphan", Reference: "ELSEWHERE-1", Amount: -7, HasAmount: true, Currency: "xx"})
	settle(ledger.Notification{EventID: "evt_4", Action: "SOMETHING_NEW"})
	led := outboundLedger{l}
	for _, id := range []string{"pending", "paid", "flagged", "orphan", "unmatched-evt_4"} {
		doc, err := led.QRStatus(ctx, outbound.StatusQuery{ID: id})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		req := httptest.NewRequest(http.MethodGet, "/v1/pay/qr/"+id, nil)
		h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}
		if err := spec.CheckResponse(req, http.StatusOK, h, doc); err != nil {
			t.Errorf("%s: %v\n%s", id, err, doc)
		}
	}
}

// A memory ledger beside state shared on Redis is worth a warning; a
// shared ledger, or nothing on Redis, is not.
func TestUnsharedLedgerWarning(t *testing.T) {
	if msg := unsharedLedgerWarning("memory", []string{"modulus_api's store", "modulus_webhook's spool"}); !strings.Contains(msg, "modulus_api's store and modulus_webhook's spool is on Redis") {
		t.Fatalf("warning %q", msg)
	}
	for _, kind := range []string{"file", "redis"} {
		if msg := unsharedLedgerWarning(kind, []string{"modulus_webhook's spool"}); msg != "" {
			t.Errorf("%s ledger: %q", kind, msg)
		}
	}
	if msg := unsharedLedgerWarning("memory", nil); msg != "" {
		t.Errorf("nothing on Redis: %q", msg)
	}
}
