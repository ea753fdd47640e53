// Package apps_test runs every example app in examples/apps against
// qrphgate's quickstart: the real binary with the committed Caddyfile,
// delivering its webhooks to the app, and the app started with the command
// its README gives.
package apps_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/quickstart"
	"github.com/qrphgate/qrphgate/internal/testenv"
)

// app is one example app: its directory under examples/apps and what it
// needs from the machine.
type app struct {
	dir     string
	require func(t *testing.T, dir string)
	// env adds variables the app's README lists beyond the common three.
	env func(t *testing.T) []string
}

var apps = []app{
	{dir: "go", require: func(*testing.T, string) {}},
	{dir: "node", require: func(t *testing.T, dir string) {
		if _, err := exec.LookPath("node"); err != nil {
			testenv.Missing(t, "node is not installed")
		}
		for _, pkg := range []string{"express", "standardwebhooks"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
				testenv.Missing(t, "run npm ci in examples/apps/node (%s is not installed)", pkg)
			}
		}
	}},
	{dir: "python", require: func(t *testing.T, _ string) {
		if out, err := exec.Command("/usr/bin/python3", "-c", "import flask").CombinedOutput(); err != nil {
			testenv.Missing(t, "Debian's python3-flask (apt-get install python3-flask): %v %s", err, bytes.TrimSpace(out))
		}
	}},
	{dir: "php", require: func(t *testing.T, _ string) {
		if _, err := exec.LookPath("php"); err != nil {
			testenv.Missing(t, "php is not installed (apt-get install php-cli)")
		}
	}, env: func(t *testing.T) []string {
		// PHP keeps its orders in a file; not in the checkout during tests.
		return []string{"ORDERS_FILE=" + filepath.Join(t.TempDir(), "orders.json")}
	}},
}

// quickstartCommand is the second of each README's three commands: the
// quickstart, delivering to the app's default webhook URL.
const quickstartCommand = "QRPHGATE_APP_WEBHOOK_URL=http://127.0.0.1:3000/payments/modulus " +
	"go run ./cmd/qrphgate run --config examples/quickstart/Caddyfile"

func appsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// readmeCommands returns the three commands of the app README's first sh
// block (install, run the quickstart, run the app).
func readmeCommands(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s/README.md has no sh block", dir)
	}
	var cmds []string
	for _, line := range strings.Split(string(m[1]), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 3 {
		t.Fatalf("%s/README.md: the sh block has %d commands, want 3 (install, quickstart, app): %q", dir, len(cmds), cmds)
	}
	if cmds[1] != quickstartCommand {
		t.Fatalf("%s/README.md: the second command is %q, want %q", dir, cmds[1], quickstartCommand)
	}
	return cmds
}

// TestREADMEs: every app's README has the three commands and documents
// its environment, and docs/example-apps.md links every app.
func TestREADMEs(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join(appsDir(), "..", "..", "docs", "example-apps.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		dir := filepath.Join(appsDir(), a.dir)
		readmeCommands(t, dir)
		b, _ := os.ReadFile(filepath.Join(dir, "README.md"))
		for _, want := range []string{"`QRPHGATE_URL`", "`PORT`", "`QRPHGATE_SIGNING_SECRET`", "/payments/modulus"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s/README.md does not mention %s", a.dir, want)
			}
		}
		if !bytes.Contains(docs, []byte("../examples/apps/"+a.dir)) {
			t.Errorf("docs/example-apps.md does not link examples/apps/%s", a.dir)
		}
	}
}

// TestExampleApps: for each app, create an order through the app (which
// calls the sidecar) and see its QR, pay it on the simulator and watch the
// app mark it paid from the signed webhook; decline another; forged
// deliveries (no, wrong or misplaced signature, stale or future timestamp)
// are refused and change nothing; a replayed Webhook-Id is not applied
// twice.
func TestExampleApps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary and four apps")
	}
	for _, a := range apps {
		t.Run(a.dir, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(appsDir(), a.dir)
			a.require(t, dir)
			cmds := readmeCommands(t, dir)

			port := e2e.FreePort(t)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			qs := quickstart.StartWith(t, quickstart.Options{ForwardTo: base + "/payments/modulus"})
			env := []string{"PORT=" + strconv.Itoa(port), "QRPHGATE_URL=" + qs.API}
			if a.env != nil {
				env = append(env, a.env(t)...)
			}
			// No QRPHGATE_SIGNING_SECRET: the app's default must be the
			// quickstart's, or no delivery verifies.
			startApp(t, dir, cmds[2], env, base)
			c := &client{t: t, base: base}
			runScenario(t, c, qs)
		})
	}
}

// TestExampleAppsWhsecSecret: given a whsec_ secret (the Standard Webhooks
// form, and the one production uses), every app verifies with its decoded
// bytes, not with the string. No sidecar is needed: the delivery is for an
// order the app does not know, which it acknowledges.
func TestExampleAppsWhsecSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four apps")
	}
	key := []byte("TEST-ONLY-fake-whsec-key-32bytes")
	secret := crypto.WebhookSecretPrefix + base64.StdEncoding.EncodeToString(key)
	decoded, err := crypto.NewWebhookSigner("whsec", secret)
	if err != nil {
		t.Fatal(err)
	}
	// The mistake: HMAC keyed with the whole "whsec_..." string.
	signWithString := func(id, ts string, body []byte) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	for _, a := range apps {
		t.Run(a.dir, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(appsDir(), a.dir)
			a.require(t, dir)
			port := e2e.FreePort(t)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			env := []string{"PORT=" + strconv.Itoa(port), "QRPHGATE_URL=http://127.0.0.1:9", "QRPHGATE_SIGNING_SECRET=" + secret}
			if a.env != nil {
				env = append(env, a.env(t)...)
			}
			startApp(t, dir, readmeCommands(t, dir)[2], env, base)
			c := &client{t: t, base: base}
			body := []byte(`{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-NOT-HERE","amount":100,"currency":"PHP"}`)
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			const id = "evt_TESTONLYWHSECSECRET00001"
			if status, answer := c.deliver(delivery(id, ts, signWithString(id, ts, body)), body); status != http.StatusUnauthorized {
				t.Errorf("signed with the whsec_ string's bytes: %d %s, want 401", status, answer)
			}
			if status, answer := c.deliver(delivery(id, ts, decoded.Sign(id, ts, body)), body); status != http.StatusOK || !strings.Contains(answer, `"received":true`) {
				t.Errorf("signed with the decoded key: %d %s, want 200", status, answer)
			}
		})
	}
}

func runScenario(t *testing.T, c *client, qs *quickstart.Instance) {
	// The checkout page.
	if status, page := c.get("/"); status != http.StatusOK || !strings.Contains(page, `action="/orders"`) {
		t.Fatalf("GET /: %d %s", status, page)
	}

	// Create an order: the app asks the sidecar for the QR and shows it.
	paid := c.createOrder("500.00")
	if paid.Status != "PENDING" || paid.Amount != "500.00" || paid.Currency != "PHP" || paid.TransactionID == "" || len(paid.WebhookIDs) != 0 {
		t.Fatalf("new order: %+v", paid)
	}
	c.checkQRShown(paid.Reference)
	if _, page := c.get("/"); !strings.Contains(page, paid.Reference) {
		t.Errorf("the checkout page does not list %s", paid.Reference)
	}

	// Pay it on the simulator, as its page's Pay button does; the webhook
	// goes simulator -> modulus_webhook -> the app, signed.
	simulate(t, qs, paid.TransactionID, "pay", "PAID")
	paid = c.waitStatus(paid.Reference, "PAID")
	if len(paid.WebhookIDs) != 1 || !regexp.MustCompile(`^evt_[0-9A-Z]{26}$`).MatchString(paid.WebhookIDs[0]) {
		t.Fatalf("paid order's deliveries: %q", paid.WebhookIDs)
	}
	if _, page := c.get("/orders/" + paid.Reference); !strings.Contains(page, `<strong id="status">PAID</strong>`) {
		t.Errorf("the order page does not show PAID:\n%s", page)
	}

	// Decline another.
	declined := c.createOrder("250.00")
	simulate(t, qs, declined.TransactionID, "decline", "DECLINED")
	c.waitStatus(declined.Reference, "DECLINED")

	// Forged deliveries straight to the app's webhook route, for a pending
	// order: every one is refused (4xx) and the order stays as it was.
	target := c.createOrder("100.00")
	signer, err := crypto.NewWebhookSigner("sign_secret", quickstart.FakeSecret(t, "sign_secret"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := crypto.NewWebhookSigner("other", "TEST-ONLY-not-the-quickstart-signing-secret")
	if err != nil {
		t.Fatal(err)
	}
	// Not the compact JSON an app would get by re-serializing: the
	// signature covers these exact bytes.
	body := []byte(fmt.Sprintf("{ \"action\" : \"QRPH_SUCCESS\", \"status\":\"SUCCESS\",\n  \"transactionId\":%q, \"referenceNumber\":%q,"+
		" \"amount\":10000, \"currency\":\"PHP\", \"note\":\"caf\\u00e9 \\/ \\ud83d\\ude00\" }", target.TransactionID, target.Reference))
	const id = "evt_TESTONLYFORGEDTHENREAL0001"
	now := time.Now()
	ts := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	sign := func(s *crypto.WebhookSigner, id string, at time.Time, b []byte) http.Header {
		return delivery(id, ts(at), s.Sign(id, ts(at), b))
	}
	for name, h := range map[string]http.Header{
		"no signature":                 delivery(id, ts(now), ""),
		"another secret":               sign(other, id, now, body),
		"signed for another id":        delivery(id, ts(now), signer.Sign("evt_TESTONLYSOMEOTHERID00001", ts(now), body)),
		"signed over other bytes":      delivery(id, ts(now), signer.Sign(id, ts(now), bytes.ReplaceAll(body, []byte("10000"), []byte("1")))),
		"stale timestamp (10 min ago)": sign(signer, id, now.Add(-10*time.Minute), body),
		"future timestamp (in 10 min)": sign(signer, id, now.Add(10*time.Minute), body),
		"not a v1 signature":           delivery(id, ts(now), "v2,"+strings.TrimPrefix(signer.Sign(id, ts(now), body), "v1,")),
	} {
		if status, answer := c.deliver(h, body); status < 400 || status > 499 {
			t.Errorf("forged delivery (%s): %d %s, want 4xx", name, status, answer)
		}
	}
	if o := c.order(target.Reference); o.Status != "PENDING" || len(o.WebhookIDs) != 0 {
		t.Fatalf("after forged deliveries the order is %+v", o)
	}

	// The same delivery correctly signed (among other signatures, as
	// during a secret rotation) is applied, although its Webhook-Id came
	// with the forgeries: a refused delivery must not burn its id.
	h := sign(signer, id, now, body)
	h.Set("Webhook-Signature", other.Sign(id, ts(now), body)+" "+h.Get("Webhook-Signature"))
	if status, answer := c.deliver(h, body); status != http.StatusOK {
		t.Fatalf("signed delivery: %d %s", status, answer)
	}
	if o := c.order(target.Reference); o.Status != "PAID" || len(o.WebhookIDs) != 1 || o.WebhookIDs[0] != id {
		t.Fatalf("after the signed delivery the order is %+v", o)
	}

	// Replays: the same delivery again (a later attempt, freshly signed),
	// and the real delivery's Webhook-Id carrying another order's payment,
	// are acknowledged and not applied.
	again := now.Add(time.Second)
	if status, answer := c.deliver(sign(signer, id, again, body), body); status != http.StatusOK {
		t.Fatalf("replayed delivery: %d %s", status, answer)
	}
	if o := c.order(target.Reference); len(o.WebhookIDs) != 1 {
		t.Fatalf("the replay was applied again: %+v", o)
	}
	untouched := c.createOrder("100.00")
	replay := []byte(fmt.Sprintf(`{"action":"QRPH_SUCCESS","status":"SUCCESS","transactionId":%q,"referenceNumber":%q,"amount":10000,"currency":"PHP"}`,
		untouched.TransactionID, untouched.Reference))
	if status, answer := c.deliver(sign(signer, paid.WebhookIDs[0], again, replay), replay); status != http.StatusOK {
		t.Fatalf("replayed Webhook-Id: %d %s", status, answer)
	}
	if o := c.order(untouched.Reference); o.Status != "PENDING" || len(o.WebhookIDs) != 0 {
		t.Fatalf("a delivery with an applied Webhook-Id changed another order: %+v", o)
	}
	if o := c.order(paid.Reference); o.Status != "PAID" || len(o.WebhookIDs) != 1 {
		t.Fatalf("the paid order changed: %+v", o)
	}
}

// delivery is the headers of one webhook delivery as qrphgate sends them.
func delivery(id, ts, sig string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Attempt", "1")
	if sig != "" {
		h.Set("Webhook-Signature", sig)
	}
	return h
}

// simulate presses the simulator page's Pay or Decline button.
func simulate(t *testing.T, qs *quickstart.Instance, txID, button, want string) {
	t.Helper()
	resp, err := http.Post(qs.Sandbox+"/sandbox/qr/"+txID+"/"+button, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var got struct{ Status string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil || got.Status != want {
		t.Fatalf("%s %s on the simulator: %d %s", button, txID, resp.StatusCode, b)
	}
}

// order is an app's GET /orders/{ref}.json.
type order struct {
	Reference     string   `json:"reference"`
	Amount        string   `json:"amount"`
	Currency      string   `json:"currency"`
	Status        string   `json:"status"`
	TransactionID string   `json:"transactionId"`
	WebhookIDs    []string `json:"webhookIds"`
}

// client talks to one app as a browser and as qrphgate would.
type client struct {
	t    *testing.T
	base string
}

var noRedirects = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (c *client) do(req *http.Request) (int, string) {
	c.t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc
	}
	return resp.StatusCode, string(b)
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

// createOrder submits the checkout form and follows it to the order.
func (c *client) createOrder(amount string) order {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+"/orders", strings.NewReader(url.Values{"amount": {amount}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, loc := c.do(req)
	u, err := url.Parse(loc)
	if status != http.StatusSeeOther || err != nil || !strings.HasPrefix(u.Path, "/orders/") {
		c.t.Fatalf("POST /orders: %d %s", status, loc)
	}
	o := c.order(strings.TrimPrefix(u.Path, "/orders/"))
	if o.Amount != amount {
		c.t.Fatalf("order %s has amount %q, want %q", o.Reference, o.Amount, amount)
	}
	return o
}

func (c *client) order(ref string) order {
	c.t.Helper()
	status, body := c.get("/orders/" + ref + ".json")
	var o order
	if status != http.StatusOK || json.Unmarshal([]byte(body), &o) != nil || o.Reference != ref {
		c.t.Fatalf("GET /orders/%s.json: %d %s", ref, status, body)
	}
	return o
}

func (c *client) waitStatus(ref, want string) order {
	c.t.Helper()
	var o order
	e2e.WaitFor(c.t, 60*time.Second, "order "+ref+" "+want, func() bool {
		o = c.order(ref)
		return o.Status == want
	})
	return o
}

// checkQRShown: the order page shows the sidecar's QR as a PNG.
func (c *client) checkQRShown(ref string) {
	c.t.Helper()
	status, page := c.get("/orders/" + ref)
	m := regexp.MustCompile(`<img [^>]*src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		c.t.Fatalf("GET /orders/%s shows no QR image: %d %s", ref, status, page)
	}
	img, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		c.t.Fatalf("the QR image is not base64: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		c.t.Fatalf("the QR image is not a PNG: %v", err)
	}
}

// deliver POSTs one webhook delivery to the app.
func (c *client) deliver(h http.Header, body []byte) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+"/payments/modulus", bytes.NewReader(body))
	req.Header = h
	return c.do(req)
}

// startApp runs the README's command for the app in its directory, in its
// own process group (npm, go run and sh start children), and waits until
// GET / answers.
func startApp(t *testing.T, dir, command string, env []string, base string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(withoutVar(os.Environ(), "QRPHGATE_SIGNING_SECRET"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := new(e2e.SyncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", command, out.String())
		}
	})
	e2e.WaitFor(t, 120*time.Second, command+" to answer", func() bool {
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", command, out.String())
		default:
		}
		resp, err := http.Get(base + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
