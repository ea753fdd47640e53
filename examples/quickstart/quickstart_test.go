package quickstart_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/quickstart"
)

// The README's create-QR body; TestREADMEQuickstart keeps the two equal.
const createBody = `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"ORDER-1"}`

// TestQuickstartLoop runs the committed quickstart Caddyfile in the real
// binary and follows the README's three curl lines: create a QR through
// modulus_api, pay it in the simulator, and find in the demo inbox the
// decrypted QRPH_SUCCESS event, which the simulator sent encrypted over
// TLS to modulus_webhook and modulus_webhook delivered, signed.
func TestQuickstartLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	qs := quickstart.Start(t)

	// 1. Create a QR on modulus_api (2090).
	status, body := do(t, http.MethodPost, qs.API+"/v1/pay/qr", createBody)
	var qr struct {
		ID, QRBody, MerchantReferenceNumber, Amount, Currency string
		ExpiresAt                                             time.Time
	}
	if status != http.StatusOK || json.Unmarshal(body, &qr) != nil || qr.ID == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	if qr.MerchantReferenceNumber != "ORDER-1" || qr.Amount != "500.00" || qr.Currency != "PHP" || time.Until(qr.ExpiresAt) < 10*time.Minute {
		t.Fatalf("create answered %s", body)
	}
	img, err := base64.StdEncoding.DecodeString(qr.QRBody)
	if err != nil {
		t.Fatalf("qrBody is not base64: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("qrBody is not a PNG: %v", err)
	}

	// 2. Pay it in the simulator (2091), as the page's Pay button does.
	status, body = do(t, http.MethodPost, qs.Sandbox+"/sandbox/qr/"+qr.ID+"/pay", "")
	var paid struct {
		ID, Status string
		Deliveries int
	}
	if status != http.StatusOK || json.Unmarshal(body, &paid) != nil || paid.ID != qr.ID || paid.Status != "PAID" || paid.Deliveries != 1 {
		t.Fatalf("pay: %d %s", status, body)
	}

	// 3. Read the inbox (2091) until modulus_webhook's delivery is there.
	type entry struct {
		WebhookID string `json:"webhookId"`
		Attempt   string `json:"webhookAttempt"`
		Signature string `json:"signature"`
		Accepted  bool   `json:"accepted"`
		Duplicate bool   `json:"duplicate"`
		Body      struct {
			Action, Status, TransactionID, ReferenceNumber, Currency string
			Amount                                                   int64
		} `json:"body"`
	}
	var inbox struct{ Entries []entry }
	e2e.WaitFor(t, 60*time.Second, "the webhook in the demo inbox", func() bool {
		status, body := do(t, http.MethodGet, qs.Sandbox+"/sandbox/inbox", "")
		return status == http.StatusOK && json.Unmarshal(body, &inbox) == nil && len(inbox.Entries) > 0
	})
	if len(inbox.Entries) != 1 {
		t.Fatalf("inbox has %d entries: %+v", len(inbox.Entries), inbox.Entries)
	}
	e := inbox.Entries[0]
	if e.Body.Action != "QRPH_SUCCESS" || e.Body.Status != "SUCCESS" || e.Body.ReferenceNumber != "ORDER-1" ||
		e.Body.TransactionID != qr.ID || e.Body.Amount != 50000 || e.Body.Currency != "PHP" {
		t.Fatalf("inbox entry body: %+v", e.Body)
	}
	// The inbox checks Webhook-Signature with the quickstart's sign_secret,
	// which only modulus_webhook holds; the evt_ id is modulus_webhook's.
	if !e.Accepted || e.Duplicate || e.Signature != "verified" || !regexp.MustCompile(`^evt_[0-9A-Z]{26}$`).MatchString(e.WebhookID) || e.Attempt != "1" {
		t.Fatalf("inbox entry: %+v", e)
	}

	// The README's "Payment status and reconciliation": the ledger has the
	// QR paid, with the webhook's amount, with no upstream call; the admin
	// API lists it as CSV.
	status, body = do(t, http.MethodGet, qs.API+"/v1/pay/qr/"+qr.ID, "")
	var doc struct {
		ID, Status string
		Result     struct {
			Action string
			Amount int64
		}
	}
	if status != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc.ID != qr.ID || doc.Status != "paid" ||
		doc.Result.Action != "QRPH_SUCCESS" || doc.Result.Amount != 50000 {
		t.Fatalf("QR status: %d %s", status, body)
	}
	if status, body2 := do(t, http.MethodGet, qs.API+"/v1/pay/qr?merchantReferenceNumber=ORDER-1", ""); status != http.StatusOK || !bytes.Equal(body2, body) {
		t.Fatalf("QR status by reference: %d %s", status, body2)
	}
	status, body = do(t, http.MethodGet, qs.Admin()+"/modulus/transactions?since=24h&format=csv", "")
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if status != http.StatusOK || err != nil || len(rows) != 2 || rows[1][0] != qr.ID || rows[1][5] != "paid" {
		t.Fatalf("transactions CSV: %d %v %q", status, err, rows)
	}

	// modulus_webhook took it from the simulator's webhook_source address
	// (127.0.0.2 where it can be bound) and decrypted it with its key.
	source := "127.0.0.1"
	if runtime.GOOS == "linux" {
		source = "127.0.0.2"
	}
	var acceptedLine string
	for _, line := range strings.Split(qs.Logs(), "\n") {
		if strings.Contains(line, `"msg":"webhook accepted"`) && strings.Contains(line, `"event_id":"`+e.WebhookID+`"`) {
			acceptedLine = line
		}
	}
	for _, want := range []string{`"client_ip":"` + source + `"`, `"action":"QRPH_SUCCESS"`, `"reference":"ORDER-1"`, `"key":"decryption_key[1]"`} {
		if !strings.Contains(acceptedLine, want) {
			t.Fatalf("modulus_webhook's log line for %s lacks %s: %q", e.WebhookID, want, acceptedLine)
		}
	}
	// Everything it wrote stays under examples/quickstart/data.
	if _, err := os.Stat(filepath.Join(qs.Dir(), "examples", "quickstart", "data", "webhooks.spool")); err != nil {
		t.Fatalf("spool: %v", err)
	}
	if _, err := os.Stat(filepath.Join(qs.Dir(), "examples", "quickstart", "data", "caddy", "pki", "authorities", "local", "root.crt")); err != nil {
		t.Fatalf("the local CA root the README points curl at: %v", err)
	}

	// 4. Readiness on the operators' listener (2092): every check of the
	// process answers, the webhook site's certificate (localhost, found from
	// the site) among them; liveness stays trivial.
	var ready struct {
		Status string
		Checks map[string]struct{ Status, Message string }
	}
	e2e.WaitFor(t, 60*time.Second, "/readyz to answer ok", func() bool {
		status, body := do(t, http.MethodGet, qs.Ops+"/readyz", "")
		return status == http.StatusOK && json.Unmarshal(body, &ready) == nil && ready.Status == "ok"
	})
	for _, prefix := range []string{"spool:", "upstream:qr:", "upstream:webhooks:", "credentials:sandbox:", "breaker:sandbox:", "certificate:localhost"} {
		found := false
		for name, c := range ready.Checks {
			found = found || (strings.HasPrefix(name, prefix) && c.Status == "ok")
		}
		if !found {
			t.Errorf("/readyz has no ok check %s*: %+v", prefix, ready.Checks)
		}
	}
	if status, body := do(t, http.MethodGet, qs.Ops+"/healthz", ""); status != http.StatusOK || string(body) != "ok" {
		t.Errorf("/healthz: %d %s", status, body)
	}
	_, metrics := do(t, http.MethodGet, qs.Ops+"/metrics", "")
	for _, want := range []string{"qrphgate_ready 1\n", `qrphgate_upstream_up{api="qr"} 1` + "\n", `qrphgate_upstream_up{api="webhooks"} 1` + "\n",
		`qrphgate_tls_certificate_expiry_seconds{name="localhost"} `} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// The fake secrets appear neither in the logs nor in the running config.
	_, cfg := do(t, http.MethodGet, qs.Admin()+"/config/", "")
	for _, name := range []string{"secret_key", "encryption_key", "sign_secret"} {
		v := quickstart.FakeSecret(t, name)
		if strings.Contains(qs.Logs(), v) || bytes.Contains(cfg, []byte(v)) {
			t.Errorf("the %s value leaked into the logs or the config", name)
		}
	}
}

// TestQuickstartAdaptValidateFmt: `qrphgate adapt`, `validate` and `fmt`
// accept the committed file as it is. validate provisions every module, so
// it resolves the fake secrets relative to the working directory: without
// them there it must fail, naming the option.
func TestQuickstartAdaptValidateFmt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cfg := filepath.Join(quickstart.Dir(), "Caddyfile")

	out, err := e2e.Run(t, t.TempDir(), "adapt", "--config", cfg)
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	for _, want := range []string{`"handler":"modulus_api"`, `"handler":"modulus_sandbox"`, `"handler":"modulus_webhook"`,
		`"secret_key":"{file.examples/quickstart/fake-secrets/secret_key}"`, `"install_trust":false`, `"disable_redirects":true`} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted JSON lacks %s", want)
		}
	}
	for _, name := range []string{"secret_key", "encryption_key", "sign_secret"} {
		if strings.Contains(out, quickstart.FakeSecret(t, name)) {
			t.Errorf("the adapted JSON carries the %s value", name)
		}
	}

	root := t.TempDir()
	quickstart.CopyFakeSecrets(t, root)
	if out, err := e2e.Run(t, root, "validate", "--config", cfg); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate from a directory holding examples/quickstart/fake-secrets: %v\n%s", err, out)
	}
	out, err = e2e.Run(t, t.TempDir(), "validate", "--config", cfg)
	if err == nil || !strings.Contains(out, "{file.examples/quickstart/fake-secrets/") || !strings.Contains(out, "is empty or unset") {
		t.Fatalf("validate without the fake secrets in the working directory: %v\n%s", err, out)
	}

	if out, err := e2e.Run(t, t.TempDir(), "fmt", "--diff", cfg); err != nil {
		t.Fatalf("the quickstart Caddyfile is not formatted (qrphgate fmt --overwrite %s):\n%s", cfg, out)
	}
}

// TestREADMEQuickstart keeps the README's Quick start on what the tests
// run: its first command is the quickstart, followed by the three curl lines.
func TestREADMEQuickstart(t *testing.T) {
	section := docSection(t, "README.md", "## Quick start")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 {
		t.Fatalf("Quick start has %d sh blocks", len(blocks))
	}
	if got := strings.TrimSpace(blocks[0][1]); got != "go run ./cmd/qrphgate run --config examples/quickstart/Caddyfile" {
		t.Errorf("the first command is %q", got)
	}
	curl := blocks[1][1]
	for _, want := range []string{
		"curl -s http://" + quickstart.APIAddr + "/v1/pay/qr -H 'Content-Type: application/json' -d '" + createBody + "'",
		"curl -s -X POST http://" + quickstart.SandboxAddr + "/sandbox/qr/",
		"curl -s http://" + quickstart.SandboxAddr + "/sandbox/inbox",
	} {
		if !strings.Contains(curl, want) {
			t.Errorf("the curl block lacks %s", want)
		}
	}
	if !strings.Contains(section, "http://"+quickstart.SandboxAddr+"/sandbox/") || !strings.Contains(section, "```sh\ngo test ./...\n```") {
		t.Error("Quick start lacks the page URL or the test command")
	}
}

// TestREADMELedger keeps the README's "Payment status and reconciliation"
// on what TestQuickstartLoop runs.
func TestREADMELedger(t *testing.T) {
	section := docSection(t, "README.md", "## Payment status and reconciliation")
	for _, want := range []string{
		"curl -s http://" + quickstart.APIAddr + "/v1/pay/qr/<id>",
		"?merchantReferenceNumber=ORDER-1",
		"curl -s 'localhost:2019/modulus/transactions?since=24h&format=csv'",
		"qrphgate modulus transactions",
		"(docs/ledger.md)",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the section lacks %s", want)
		}
	}
}

// TestREADMEProductionCaddyfile: the production configuration that
// docs/to-production.md derives from the quickstart adapts and validates
// (with fake production credentials in the environment), and keeps its
// secrets out of the JSON.
func TestREADMEProductionCaddyfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	section := docSection(t, "docs/to-production.md", "# From the simulator to the real sandbox, then to production")
	m := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the section has no caddyfile block")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(m[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := e2e.Run(t, dir, "adapt", "--config", cfg)
	if err != nil || !strings.Contains(out, `"environment":"production"`) || !strings.Contains(out, `"secret_key":"{env.MODULUS_SECRET_KEY}"`) {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	t.Setenv("MODULUS_SECRET_KEY", "sk_live_FAKE-readme-do-not-use")
	t.Setenv("MODULUS_ENCRYPTION_KEY", "TEST-ONLY-fake-key-do-not-use-32")
	t.Setenv("MODULUS_ACTIVATION_CODE", "TEST-0000-0000-0001")
	t.Setenv("QRPHGATE_SIGNING_SECRET", "TEST-ONLY-fake-signing-secret-do-not-use")
	if out, err := e2e.Run(t, dir, "validate", "--config", cfg); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	// A test key in production is refused: validate really checks them.
	t.Setenv("MODULUS_SECRET_KEY", "sk_test_FAKE-readme-do-not-use")
	if out, err := e2e.Run(t, dir, "validate", "--config", cfg); err == nil || !strings.Contains(out, "secret_key") {
		t.Fatalf("validate with an sk_test_ key in production: %v\n%s", err, out)
	}
}

// docSection returns the text of file (a path from the repository root)
// under heading, up to the next heading of the same or a higher level;
// lines in fenced code blocks are never taken for headings.
func docSection(t *testing.T, file, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(quickstart.Dir(), "..", "..", filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	level := len(heading) - len(strings.TrimLeft(heading, "#"))
	var section []string
	in, fenced := false, false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		} else if n := len(line) - len(strings.TrimLeft(line, "#")); !fenced && n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			if in {
				break
			}
			in = line == heading
			continue
		}
		if in {
			section = append(section, line)
		}
	}
	if !in {
		t.Fatalf("%s has no heading %q", file, heading)
	}
	return strings.Join(section, "\n")
}

func do(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
