package caddymodule

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/ledger"
)

// ledgerApp is the app behind the gateway in the ledger tests: it checks
// every delivery's signature itself and keeps what came, headers included.
type ledgerApp struct {
	mu     sync.Mutex
	got    []ledgerDelivery
	badSig int
}

type ledgerDelivery struct {
	id, source, reconciliation string
	body                       map[string]any
}

func (a *ledgerApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(e2eSignSecret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.Header.Get("Webhook-Id") + "." + r.Header.Get("Webhook-Timestamp") + "." + string(body)))
	a.mu.Lock()
	defer a.mu.Unlock()
	if !hmac.Equal([]byte(r.Header.Get("Webhook-Signature")), []byte("v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
		a.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d := ledgerDelivery{id: r.Header.Get("Webhook-Id"), source: r.Header.Get("Webhook-Source"), reconciliation: r.Header.Get("Modulus-Reconciliation")}
	_ = json.Unmarshal(body, &d.body)
	a.got = append(a.got, d)
	w.WriteHeader(http.StatusNoContent)
}

// deliveries returns what came for reference ref with action.
func (a *ledgerApp) deliveries(ref, action string) []ledgerDelivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []ledgerDelivery
	for _, d := range a.got {
		if d.body["referenceNumber"] == ref && d.body["action"] == action {
			out = append(out, d)
		}
	}
	return out
}

// waitDelivery waits for the first delivery of (ref, action).
func (a *ledgerApp) waitDelivery(t *testing.T, ref, action string) ledgerDelivery {
	t.Helper()
	e2e.WaitFor(t, 60*time.Second, action+" of "+ref+" at the app", func() bool { return len(a.deliveries(ref, action)) > 0 })
	return a.deliveries(ref, action)[0]
}

// qrDoc is GET /v1/pay/qr/{id}'s answer (its shape is checked against
// proxy/openapi.json by TestLedgerDocumentsMatchOpenAPI).
type qrDoc = ledger.Document

// createQR creates a QR through modulus_api and returns its id and expiry.
func createQR(t *testing.T, api, ref string) (id, expiresAt string) {
	t.Helper()
	resp, err := http.Post(api+"/v1/pay/qr", "application/json",
		strings.NewReader(`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"`+ref+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ ID, ExpiresAt string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ans) != nil || ans.ID == "" {
		t.Fatalf("create %s: %d %s", ref, resp.StatusCode, b)
	}
	return ans.ID, ans.ExpiresAt
}

// qrStatus is GET path on modulus_api: the status code and the document.
func qrStatus(t *testing.T, api, path string) (int, qrDoc) {
	t.Helper()
	resp, err := http.Get(api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d qrDoc
	_ = json.NewDecoder(resp.Body).Decode(&d)
	return resp.StatusCode, d
}

// waitStatus polls the QR's status until it is want.
func waitStatus(t *testing.T, api, id, want string) qrDoc {
	t.Helper()
	var d qrDoc
	e2e.WaitFor(t, 60*time.Second, id+" "+want, func() bool {
		_, d = qrStatus(t, api, "/v1/pay/qr/"+id)
		return d.Status == want
	})
	return d
}

// pageMetric reads one series from a Prometheus text page (0 if absent).
func pageMetric(page, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// ledgerPolicy writes a policy file that shortens the QR validity.
func ledgerPolicy(t *testing.T, dir, validity string) string {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte("qr:\n  validity: "+validity+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ledgerSites are the webhook and metrics sites of the ledger tests: the
// route the provider posts to, delivering to the app, and the metrics.
func ledgerSites(hook, app, mets int, spool string) string {
	return fmt.Sprintf(`http://127.0.0.1:%d {
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.1/32
			forward_to     http://127.0.0.1:%d/payments
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          %s
			retry_backoff  100ms 300ms
		}
	}
}
http://127.0.0.1:%d {
	modulus_metrics
}
`, hook, app, spool, mets)
}

// TestLedgerEndToEnd runs the whole ledger in the real binary, with the
// simulator as the provider: a created QR is pending, paying makes it paid
// with the amount the webhook stated, declining declined; a webhook that
// states another amount, or that matches no QR, is delivered with its flag;
// a QR with no result (a policy qr.validity of 15s, expiry_grace 1s)
// becomes expired and one signed QRPH_EXPIRED reaches the app, marked
// Webhook-Source: qrphgate; the admin API, its CSV, the command line, the
// status page and the metrics all show it.
func TestLedgerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const secret = "sk_test_FAKE-ledger-loop-do-not-use"
	dir := t.TempDir()
	policyPath := ledgerPolicy(t, dir, "15s")
	adminAddr := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	api, sbx, hook, appPort, mets := e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t)
	app := new(ledgerApp)
	serveApp(t, appPort, app)
	g := e2e.Start(t, e2e.Options{Dir: dir, AdminAddr: adminAddr, Env: append(gatewayEnv(), "QG_LEDGER_SECRET="+secret), Caddyfile: fmt.Sprintf(`{
	admin %s
	modulus {
		expiry_grace  1s
		expiry_events on
	}
}
http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.QG_LEDGER_SECRET}
		encryption_key  {env.QRPHGATE_E2E_KEY_1}
		activation_code TEST-0000-0000-0001
		qr_url          http://127.0.0.1:%d
		webhooks_url    http://127.0.0.1:%d
		policy          %s
	}
}
http://127.0.0.1:%d {
	modulus_sandbox {
		secret_key       {env.QG_LEDGER_SECRET}
		encryption_key   {env.QRPHGATE_E2E_KEY_1}
		activation_codes TEST-0000-0000-0001
		callbacks        http://127.0.0.1:%d/webhooks/modulus
		retry_intervals  1s 1s
	}
}
`, adminAddr, api, sbx, sbx, policyPath, sbx, hook) + ledgerSites(hook, appPort, mets, "spool/ledger.spool")})
	apiURL, sbxURL := fmt.Sprintf("http://127.0.0.1:%d", api), fmt.Sprintf("http://127.0.0.1:%d", sbx)
	sandboxPost := func(path string) {
		t.Helper()
		resp, err := http.Post(sbxURL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}

	// The QR left to expire is made first, so the others happen while it
	// waits.
	expiring, _ := createQR(t, apiURL, "LED-EXPIRE")

	// Create: pending, by id and by reference, with the create answer's
	// expiry; an unknown id is 404.
	paidID, expiresAt := createQR(t, apiURL, "LED-PAID")
	code, d := qrStatus(t, apiURL, "/v1/pay/qr/"+paidID)
	if code != 200 || d.Status != ledger.StatusPending || d.Amount != "500.00" || d.Currency != "PHP" || d.MerchantReferenceNumber != "LED-PAID" ||
		d.ExpiresAt == nil || d.ExpiresAt.UTC().Format(time.RFC3339) != expiresAt || d.Result != nil {
		t.Fatalf("after create: %d %+v", code, d)
	}
	if code, d := qrStatus(t, apiURL, "/v1/pay/qr?merchantReferenceNumber=LED-PAID"); code != 200 || d.ID != paidID {
		t.Fatalf("by reference: %d %+v", code, d)
	}
	if code, _ := qrStatus(t, apiURL, "/v1/pay/qr/no-such-qr"); code != http.StatusNotFound {
		t.Fatalf("unknown id: %d", code)
	}

	// Pay: paid, with the amount the webhook stated.
	sandboxPost("/sandbox/qr/" + paidID + "/pay")
	if dl := app.waitDelivery(t, "LED-PAID", "QRPH_SUCCESS"); dl.source != "modulus" || dl.reconciliation != "" {
		t.Fatalf("payment delivered with Webhook-Source %q, Modulus-Reconciliation %q", dl.source, dl.reconciliation)
	}
	d = waitStatus(t, apiURL, paidID, ledger.StatusPaid)
	if d.Result == nil || d.Result.Action != "QRPH_SUCCESS" || d.Result.Amount == nil || *d.Result.Amount != 50000 ||
		d.Result.Currency != "PHP" || d.Result.TransactionID != paidID || d.Flags != nil {
		t.Fatalf("paid: %+v %+v", d, d.Result)
	}

	// Decline: declined.
	declID, _ := createQR(t, apiURL, "LED-DECL")
	sandboxPost("/sandbox/qr/" + declID + "/decline")
	app.waitDelivery(t, "LED-DECL", "QRPH_DECLINED")
	waitStatus(t, apiURL, declID, ledger.StatusDeclined)

	// Another amount stated: delivered anyway, flagged.
	mismatchID, _ := createQR(t, apiURL, "LED-MISMATCH")
	sandboxPost("/sandbox/qr/" + mismatchID + "/pay?amount=12345")
	if dl := app.waitDelivery(t, "LED-MISMATCH", "QRPH_SUCCESS"); dl.reconciliation != "amount_mismatch" || dl.body["amount"] != float64(12345) {
		t.Fatalf("mismatch delivered with Modulus-Reconciliation %q, body %v", dl.reconciliation, dl.body)
	}
	if d := waitStatus(t, apiURL, mismatchID, ledger.StatusPaid); fmt.Sprint(d.Flags) != "[amount_mismatch]" || *d.Result.Amount != 12345 {
		t.Fatalf("mismatch: %+v", d)
	}

	// A QR made on the page never went through modulus_api: its payment
	// matches no QR the ledger knows.
	resp, err := http.Post(sbxURL+"/sandbox/qr", "application/json",
		strings.NewReader(`{"amount":"7.00","currency":"PHP","merchantReferenceNumber":"LED-ORPHAN"}`))
	if err != nil {
		t.Fatal(err)
	}
	var orphan struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&orphan)
	resp.Body.Close()
	sandboxPost("/sandbox/qr/" + orphan.ID + "/pay")
	if dl := app.waitDelivery(t, "LED-ORPHAN", "QRPH_SUCCESS"); dl.reconciliation != "unknown_reference" {
		t.Fatalf("orphan delivered with Modulus-Reconciliation %q", dl.reconciliation)
	}

	// Expiry: expired, and one signed QRPH_EXPIRED marked as the gateway's.
	d = waitStatus(t, apiURL, expiring, ledger.StatusExpired)
	if d.Result != nil {
		t.Fatalf("expired: %+v", d)
	}
	ev := app.waitDelivery(t, "LED-EXPIRE", ledger.ActionExpired)
	if ev.source != "qrphgate" || ev.body["transactionId"] != expiring || ev.body["amount"] != float64(50000) ||
		ev.body["currency"] != "PHP" || ev.body["expiredAt"] == nil || !strings.HasPrefix(ev.id, "evt_") {
		t.Fatalf("expiry event %+v", ev)
	}
	// It stays one: the sweep keeps running (three more passes) without
	// sending it again.
	sweeps := pageMetric(getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", mets)), "qrphgate_ledger_sweeps_total")
	e2e.WaitFor(t, 60*time.Second, "three more sweeps", func() bool {
		return pageMetric(getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", mets)), "qrphgate_ledger_sweeps_total") >= sweeps+3
	})
	if n := len(app.deliveries("LED-EXPIRE", ledger.ActionExpired)); n != 1 {
		t.Fatalf("%d QRPH_EXPIRED events delivered, want 1", n)
	}
	app.mu.Lock()
	bad := app.badSig
	app.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d deliveries with a bad signature", bad)
	}

	// The operator's views.
	var page transactionsPage
	if err := json.Unmarshal([]byte(getBody(t, g.Admin()+"/modulus/transactions")), &page); err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, tx := range page.Transactions {
		refs = append(refs, tx.Reference+":"+tx.Status)
	}
	if got := strings.Join(refs, " "); got != "LED-ORPHAN:paid LED-MISMATCH:paid LED-DECL:declined LED-PAID:paid LED-EXPIRE:expired" {
		t.Fatalf("transactions, newest first: %s", got)
	}
	rows, err := csv.NewReader(strings.NewReader(getBody(t, g.Admin()+"/modulus/transactions?status=expired&format=csv"))).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "id" || rows[1][0] != expiring || rows[1][5] != "expired" {
		t.Fatalf("CSV of the expired: %v %q", err, rows)
	}
	out, err := e2e.Run(t, dir, "modulus", "transactions", "--address", adminAddr, "--status", "paid", "--since", "1h", "--format", "csv")
	if err != nil {
		t.Fatalf("qrphgate modulus transactions: %v\n%s", err, out)
	}
	rows, err = csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(ledger.CSVHeader, ",") {
		t.Fatalf("the command's CSV: %v\n%s", err, out)
	}
	flags := map[string]string{}
	for _, r := range rows[1:] {
		flags[r[2]] = r[14]
	}
	if fmt.Sprint(flags) != "map[LED-MISMATCH:amount_mismatch LED-ORPHAN:unknown_reference LED-PAID:]" {
		t.Fatalf("flags in the command's CSV: %v", flags)
	}
	var st struct {
		Ledger map[string]struct {
			Transactions map[string]int `json:"transactions"`
			ExpiryEvents bool           `json:"expiry_events"`
			Here         bool           `json:"expiry_events_here"`
		} `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(getBody(t, g.Admin()+"/modulus/status")), &st); err != nil {
		t.Fatal(err)
	}
	if l := st.Ledger["memory"]; fmt.Sprint(l.Transactions) != "map[declined:1 expired:1 paid:3 pending:0]" || !l.ExpiryEvents || !l.Here {
		t.Fatalf("status: %+v", st.Ledger)
	}
	m := getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", mets))
	for series, want := range map[string]float64{
		`qrphgate_transactions_total{status="pending"}`:                 4,
		`qrphgate_transactions_total{status="paid"}`:                    3,
		`qrphgate_transactions_total{status="declined"}`:                1,
		`qrphgate_transactions_total{status="expired"}`:                 1,
		`qrphgate_reconciliation_flags_total{flag="amount_mismatch"}`:   1,
		`qrphgate_reconciliation_flags_total{flag="unknown_reference"}`: 1,
		`qrphgate_reconciliation_flags_total{flag="late_result"}`:       0,
		`qrphgate_ledger_expiry_events_total{outcome="emitted"}`:        1,
		`qrphgate_ledger_errors_total{op="record"}`:                     0,
		`qrphgate_reconciliation_flags_total{flag="currency_mismatch"}`: 0,
		`qrphgate_ledger_expiry_events_total{outcome="failed"}`:         0,
		`qrphgate_webhooks_received_total{result="accepted"}`:           4,
	} {
		if got := pageMetric(m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !bytes.Contains([]byte(g.Logs()), []byte("payment result flagged for reconciliation")) {
		t.Fatal("no error log line for the flagged results")
	}
}

// TestLedgerReplicasOnRedis: two gateway processes with `ledger` on one
// Redis see one ledger (a QR created on one is pending on the other, and
// paid there once the other received its webhook), and of the two expiry
// sweeps running every second, exactly one expires a QR and sends its
// QRPH_EXPIRED, once.
func TestLedgerReplicasOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv := redistest.Start(t, redistest.Options{})
	provider := newProvider(t)
	app := new(ledgerApp)
	appPort := e2e.FreePort(t)
	serveApp(t, appPort, app)
	policyPath := ledgerPolicy(t, t.TempDir(), "8s")
	type rep struct {
		g                     *e2e.Gateway
		api, hook, mets, port int
	}
	start := func() rep {
		r := rep{api: e2e.FreePort(t), hook: e2e.FreePort(t), mets: e2e.FreePort(t), port: e2e.FreePort(t)}
		env := append(gatewayEnv(), "QG_REPLICA_SECRET="+fakeSandboxKey, "QG_REPLICA_ENC="+fakeEncryptionKey, "QG_REPLICA_ACT="+fakeActivation)
		r.g = e2e.Start(t, e2e.Options{AdminAddr: fmt.Sprintf("127.0.0.1:%d", r.port), Env: env, Caddyfile: fmt.Sprintf(`{
	admin 127.0.0.1:%d
	modulus {
		ledger        %s
		expiry_grace  1s
		expiry_events on
	}
}
http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.QG_REPLICA_SECRET}
		encryption_key  {env.QG_REPLICA_ENC}
		activation_code {env.QG_REPLICA_ACT}
		qr_url          %s
		webhooks_url    %s
		store           %s
		policy          %s
	}
}
`, r.port, srv.URL(), r.api, provider.URL, provider.URL, srv.URL(), policyPath) + ledgerSites(r.hook, appPort, r.mets, srv.URL())})
		return r
	}
	a, b := start(), start()
	apiA, apiB := fmt.Sprintf("http://127.0.0.1:%d", a.api), fmt.Sprintf("http://127.0.0.1:%d", b.api)

	expiring, _ := createQR(t, apiA, "REP-EXPIRE")
	paid, _ := createQR(t, apiA, "REP-PAID")
	if code, d := qrStatus(t, apiB, "/v1/pay/qr/"+paid); code != 200 || d.Status != ledger.StatusPending {
		t.Fatalf("the other replica: %d %+v", code, d)
	}
	body := sealWebhook(t, `{"action":"QRPH_SUCCESS","transactionId":"`+paid+`","referenceNumber":"REP-PAID","amount":50000,"currency":"PHP"}`)
	if ans := postWebhook(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/webhooks/modulus", b.hook), body, nil); ans.status != 200 {
		t.Fatalf("webhook to B: %+v", ans)
	}
	if d := waitStatus(t, apiA, paid, ledger.StatusPaid); d.Flags != nil {
		t.Fatalf("paid, seen from A: %+v", d)
	}
	if dl := app.waitDelivery(t, "REP-PAID", "QRPH_SUCCESS"); dl.reconciliation != "" || dl.source != "modulus" {
		t.Fatalf("payment delivered with %+v", dl)
	}

	waitStatus(t, apiB, expiring, ledger.StatusExpired)
	ev := app.waitDelivery(t, "REP-EXPIRE", ledger.ActionExpired)
	if ev.source != "qrphgate" || ev.body["transactionId"] != expiring {
		t.Fatalf("expiry event %+v", ev)
	}
	metrics := func(r rep) string { return getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", r.mets)) }
	sweepsA, sweepsB := pageMetric(metrics(a), "qrphgate_ledger_sweeps_total"), pageMetric(metrics(b), "qrphgate_ledger_sweeps_total")
	e2e.WaitFor(t, 60*time.Second, "three more sweeps on each replica", func() bool {
		return pageMetric(metrics(a), "qrphgate_ledger_sweeps_total") >= sweepsA+3 && pageMetric(metrics(b), "qrphgate_ledger_sweeps_total") >= sweepsB+3
	})
	if n := len(app.deliveries("REP-EXPIRE", ledger.ActionExpired)); n != 1 {
		t.Fatalf("%d QRPH_EXPIRED events delivered, want 1", n)
	}
	const emitted = `qrphgate_ledger_expiry_events_total{outcome="emitted"}`
	const expired = `qrphgate_transactions_total{status="expired"}`
	if e, x := pageMetric(metrics(a), emitted)+pageMetric(metrics(b), emitted), pageMetric(metrics(a), expired)+pageMetric(metrics(b), expired); e != 1 || x != 1 {
		t.Fatalf("across the replicas: %v events emitted and %v expiries counted, want 1 and 1", e, x)
	}
	var st struct {
		Ledger map[string]struct {
			Store        string         `json:"store"`
			Transactions map[string]int `json:"transactions"`
		} `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(getBody(t, a.g.Admin()+"/modulus/status")), &st); err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Ledger {
		if l.Store != "redis" || fmt.Sprint(l.Transactions) != "map[declined:0 expired:1 paid:1 pending:0]" {
			t.Fatalf("status of A: %+v", st.Ledger)
		}
	}
	if len(st.Ledger) != 1 {
		t.Fatalf("status of A: %+v", st.Ledger)
	}
}

// TestLedgerMemoryBesideRedisWarns: a config whose webhook spool is on
// Redis (it runs as replicas) while its ledger is memory logs a warning when
// it starts; with the ledger on that Redis it does not.
func TestLedgerMemoryBesideRedisWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv := redistest.Start(t, redistest.Options{})
	const warning = "the payments ledger is in memory while modulus_webhook's spool is on Redis"
	for _, tc := range []struct {
		name, global string
		warns        bool
	}{
		{"memory", "", true},
		{"redis", "\tmodulus {\n\t\tledger " + srv.URL() + "\n\t}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := e2e.FreePort(t)
			g := e2e.Start(t, e2e.Options{AdminAddr: fmt.Sprintf("127.0.0.1:%d", port), Env: gatewayEnv(),
				Caddyfile: fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n%s}\n", port, tc.global) +
					ledgerSites(e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), srv.URL())})
			if tc.warns {
				e2e.WaitFor(t, 30*time.Second, "the warning", func() bool { return g.Contains(warning) })
				return
			}
			// Once the config started (its start hooks ran), nothing of
			// the kind was logged.
			e2e.WaitFor(t, 30*time.Second, "the config to start", func() bool { return g.Contains("serving initial configuration") })
			if g.Contains("payments ledger is in memory") {
				t.Fatalf("a Redis ledger warned:\n%s", g.Logs())
			}
		})
	}
}
