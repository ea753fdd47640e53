package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/internal/quickstart"
	"github.com/qrphgate/qrphgate/internal/testcerts"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/store"
)

// preflightRun is one run of `qrphgate modulus preflight` as a subprocess.
type preflightRun struct {
	stdout, stderr string
	code           int
}

// runPreflightBinary runs the real binary's preflight in dir (its working
// and data directory, as for the gateway) with extra environment.
func runPreflightBinary(t *testing.T, dir string, env []string, args ...string) preflightRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Binary(t), append([]string{"modulus", "preflight"}, args...)...)
	cmd.Dir = dir
	// TMPDIR: the test payment's QR image goes to the test's directory.
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir, "TMPDIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := preflightRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running preflight: %v\n%s", err, stderr.String())
	}
	return run
}

// report decodes a --json run's output.
func (r preflightRun) report(t *testing.T) preflight.Report {
	t.Helper()
	var rep preflight.Report
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("the --json output is not the report: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	if rep.Schema != preflight.Schema {
		t.Fatalf("schema %q", rep.Schema)
	}
	return rep
}

// checkStatus returns the status of the only check with id (and a subject
// containing sub), failing the test when there is not exactly one.
func checkStatus(t *testing.T, rep preflight.Report, id, sub string) preflight.Status {
	t.Helper()
	var found []preflight.Check
	for _, c := range rep.Checks {
		if c.ID == id && strings.Contains(c.Subject, sub) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d checks %s [%s] in %+v", len(found), id, sub, rep.Checks)
	}
	return found[0].Status
}

var wantLine = regexp.MustCompile(`^# want: (ok|warn|fail) (\S+)$`)

// TestPreflightConfigs runs every testdata/preflight config through the
// binary: each check its header names has the status it says, the exit
// status follows the fails, the text and JSON forms agree, stderr stays
// silent, and no secret is printed.
func TestPreflightConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "preflight", "*.caddyfile"))
	if err != nil || len(files) < 15 {
		t.Fatalf("preflight configs: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), src, 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{"PF_SPOOL=" + filepath.Join(dir, "spool", "webhooks.spool")}
			for k, v := range preflightEnv {
				env = append(env, k+"="+v)
			}
			type want struct {
				status preflight.Status
				id     string
			}
			var wants []want
			fails := false
			sc := bufio.NewScanner(bytes.NewReader(src))
			for sc.Scan() {
				line := sc.Text()
				if m := wantLine.FindStringSubmatch(line); m != nil {
					wants = append(wants, want{preflight.Status(m[1]), m[2]})
					fails = fails || m[1] == "fail"
				}
				if kv, ok := strings.CutPrefix(line, "# env: "); ok {
					env = append(env, kv)
				}
			}
			if len(wants) == 0 {
				t.Fatal("the config names no expected check (# want: status id)")
			}
			jsonRun := runPreflightBinary(t, dir, env, "--config", "Caddyfile", "--json")
			textRun := runPreflightBinary(t, dir, env, "--config", "Caddyfile")
			rep := jsonRun.report(t)
			for _, w := range wants {
				if got := checkStatus(t, rep, w.id, ""); got != w.status {
					t.Errorf("%s is %s, want %s:\n%s", w.id, got, w.status, textRun.stdout)
				}
				// The text form has the same line.
				if !regexp.MustCompile(`(?m)^` + string(w.status) + ` +` + regexp.QuoteMeta(w.id) + ` `).MatchString(textRun.stdout) {
					t.Errorf("the text report lacks the %s line of %s:\n%s", w.status, w.id, textRun.stdout)
				}
			}
			wantCode := 0
			if fails {
				wantCode = 1
			}
			if jsonRun.code != wantCode || textRun.code != wantCode || rep.Passed == fails {
				t.Errorf("exit %d/%d, passed %v, want exit %d", jsonRun.code, textRun.code, rep.Passed, wantCode)
			}
			if jsonRun.stderr != "" || textRun.stderr != "" {
				t.Errorf("preflight wrote to stderr:\n%s%s", jsonRun.stderr, textRun.stderr)
			}
			assertNoSecrets(t, jsonRun.stdout+textRun.stdout, preflightSecrets()...)
		})
	}
}

// TestPreflightQuickstartLive: the committed quickstart, running, passes
// every check with --live (a sandbox on loopback gets warnings, no fail),
// --test-payment 1.00 creates a QR the simulator knows and can pay, and
// the webhook of that payment reaches the demo inbox. With the gateway
// stopped, the certificate is read from Caddy's storage.
func TestPreflightQuickstartLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	qs := quickstart.Start(t)
	dir := qs.Dir()
	// Caddy issues the localhost certificate after start-up; until then
	// the handshake fails and live.certificate rightly fails.
	wh, err := url.Parse(qs.Webhook)
	if err != nil {
		t.Fatal(err)
	}
	e2e.WaitFor(t, time.Minute, "the webhook site's certificate", func() bool {
		c, err := tls.Dial("tcp", wh.Host, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only waiting for a certificate
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	secrets := []string{quickstart.FakeSecret(t, "secret_key"), quickstart.FakeSecret(t, "encryption_key"), quickstart.FakeSecret(t, "sign_secret")}

	text := runPreflightBinary(t, dir, nil, "--config", "Caddyfile", "--live", "--test-payment", "1.00")
	if text.code != 0 || strings.Contains(text.stdout, "\nfail ") || text.stderr != "" {
		t.Fatalf("exit %d:\n%s\nstderr: %s", text.code, text.stdout, text.stderr)
	}
	watch := regexp.MustCompile(`watch its status: curl (http://127\.0\.0\.1:\d+)/v1/pay/qr/(\S+)\n`).FindStringSubmatch(text.stdout)
	if watch == nil || watch[1] != qs.API {
		t.Fatalf("no status command for %s in:\n%s", qs.API, text.stdout)
	}
	id := watch[2]
	if !strings.Contains(text.stdout, "created through the running gateway") {
		t.Errorf("the test QR did not go through the running gateway:\n%s", text.stdout)
	}

	// The simulator has the QR; paying it delivers the result to the inbox.
	state := getBody(t, qs.Sandbox+"/sandbox/api/state")
	if !strings.Contains(state, id) {
		t.Fatalf("the simulator does not know QR %s:\n%s", id, state)
	}
	resp, err := http.Post(qs.Sandbox+"/sandbox/qr/"+id+"/pay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("paying the test QR: %d", resp.StatusCode)
	}
	e2e.WaitFor(t, 30*time.Second, "the test payment's webhook in the inbox", func() bool {
		return strings.Contains(getBody(t, qs.Sandbox+"/sandbox/inbox"), "PREFLIGHT-")
	})
	// The status command preflight printed shows the payment paid.
	e2e.WaitFor(t, 30*time.Second, "the ledger's status of the test QR", func() bool {
		return strings.Contains(getBody(t, watch[1]+"/v1/pay/qr/"+id), `"status":"paid"`)
	})

	js := runPreflightBinary(t, dir, nil, "--config", "Caddyfile", "--live", "--json")
	rep := js.report(t)
	if js.code != 0 || !rep.Passed || rep.Summary.Fail != 0 || !rep.Live {
		t.Fatalf("exit %d, %+v:\n%s", js.code, rep.Summary, js.stdout)
	}
	for id, want := range map[string]preflight.Status{
		"config.provision": preflight.OK, "api.secret_key": preflight.OK, "api.https": preflight.Warn,
		"sandbox.simulator": preflight.Warn, "webhook.tls": preflight.OK,
		"webhook.sign_secret": preflight.OK, "admin.listen": preflight.OK,
		"live.ping_qr": preflight.OK, "live.ping_webhooks": preflight.OK, "live.credentials": preflight.OK,
		"live.certificate": preflight.Warn, // Caddy's local CA, 12-hour certificates: fair in the sandbox
	} {
		if got := checkStatus(t, rep, id, ""); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	// Measured times keep their size, however fast a loopback call is.
	for _, id := range []string{"live.ping_qr", "live.ping_webhooks", "live.credentials", "webhook.spool"} {
		for _, c := range rep.Find(id) {
			if strings.Contains(c.Reason, " 0s") || c.ElapsedMS == nil || *c.ElapsedMS <= 0 {
				t.Errorf("%s reports no time: %+v", id, c)
			}
		}
	}
	// The running gateway refuses a handshake limited to TLS 1.1 (Caddy's
	// default), which the second handshake proves.
	if c := rep.Find("live.certificate"); len(c) != 1 || !strings.Contains(c[0].Reason, "refuses TLS 1.1 and older") {
		t.Errorf("live.certificate: %+v", c)
	}
	// The spool's fsync is timed (a loaded machine may make it slow: a
	// warning, never a failure).
	if sp := rep.Find("webhook.spool"); len(sp) != 1 || sp[0].Status == preflight.Fail || sp[0].ElapsedMS == nil {
		t.Errorf("webhook.spool: %+v", sp)
	}
	for _, action := range []string{"QRPH_SUCCESS", "QRPH_DECLINED"} {
		if got := checkStatus(t, rep, "live.webhook_registered", action); got != preflight.OK {
			t.Errorf("live.webhook_registered %s: %s", action, got)
		}
	}
	assertNoSecrets(t, text.stdout+js.stdout, secrets...)

	// A URL nothing is registered for (--webhook-url), then a registration
	// disabled through the gateway: each fails with the command that fixes it.
	other := runPreflightBinary(t, dir, nil, "--config", "Caddyfile", "--live", "--json", "--webhook-url", qs.Webhook+"-elsewhere")
	rep = other.report(t)
	for _, c := range rep.Find("live.webhook_registered") {
		if c.Status != preflight.Fail || !strings.Contains(c.Fix, "curl -X POST "+qs.API+"/v1/webhooks") || !strings.Contains(c.Reason, "registered for: "+qs.Webhook) {
			t.Errorf("unregistered URL: %+v", c)
		}
	}
	if other.code != 1 || len(rep.Find("live.webhook_registered")) != 2 {
		t.Errorf("unregistered URL: exit %d", other.code)
	}
	var list struct {
		Webhooks []struct{ ID, WebhookAction string }
	}
	if err := json.Unmarshal([]byte(getBody(t, qs.API+"/v1/webhooks")), &list); err != nil {
		t.Fatal(err)
	}
	for _, w := range list.Webhooks {
		if w.WebhookAction != "QRPH_DECLINED" {
			continue
		}
		req, _ := http.NewRequest(http.MethodPut, qs.API+"/v1/webhooks/"+w.ID, strings.NewReader(`{"webhookStatus":"DISABLED"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("disabling webhook %s: %d", w.ID, resp.StatusCode)
		}
	}
	disabled := runPreflightBinary(t, dir, nil, "--config", "Caddyfile", "--live", "--json")
	rep = disabled.report(t)
	if disabled.code != 1 || checkStatus(t, rep, "live.webhook_registered", "QRPH_SUCCESS") != preflight.OK ||
		checkStatus(t, rep, "live.webhook_registered", "QRPH_DECLINED") != preflight.Fail {
		t.Fatalf("a disabled registration: exit %d:\n%s", disabled.code, disabled.stdout)
	}
	for _, c := range rep.Find("live.webhook_registered") {
		if strings.Contains(c.Subject, "QRPH_DECLINED") && (!strings.Contains(c.Reason, "DISABLED") || !strings.Contains(c.Fix, "curl -X PUT "+qs.API+"/v1/webhooks/")) {
			t.Errorf("disabled: %+v", c)
		}
	}

	qs.Stop()
	down := runPreflightBinary(t, dir, nil, "--config", "Caddyfile", "--live", "--json")
	rep = down.report(t)
	if down.code != 1 || checkStatus(t, rep, "live.ping_qr", "") != preflight.Fail {
		t.Errorf("with the simulator down: exit %d, live.ping_qr %s", down.code, checkStatus(t, rep, "live.ping_qr", ""))
	}
	for _, c := range rep.Find("live.certificate") {
		if c.Status != preflight.Warn || !strings.Contains(c.Reason, "in Caddy's storage") {
			t.Errorf("certificate with the gateway stopped: %+v", c)
		}
	}
	assertNoSecrets(t, down.stdout, secrets...)
}

// apiOnlyConfig is a config with one modulus_api (on a port where nothing
// listens) in front of the fake provider; global lines go to the global
// options block.
func apiOnlyConfig(t *testing.T, environment, keyVar, upstream string, global ...string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	src := fmt.Sprintf(`{
	admin off
%s
}
http://127.0.0.1:%d {
	modulus_api {
		environment %s
		secret_key {env.%s}
		encryption_key {env.PF_ENCRYPTION_KEY}
		activation_code {env.PF_ACTIVATION_CODE}
		qr_url %s
		webhooks_url %s
	}
}
`, strings.Join(global, "\n"), e2e.FreePort(t), environment, keyVar, upstream, upstream)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func preflightEnvList() []string {
	var env []string
	for k, v := range preflightEnv {
		env = append(env, k+"="+v)
	}
	return env
}

// A 401 or 403 from the provider fails live.credentials with the
// provider's code, after exactly one call: never retried; --test-payment is
// then skipped, sending nothing.
func TestPreflightCredentialsRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, tc := range []struct {
		name  string
		fault *fakemodulus.Fault
		code  string
	}{
		{"wrong key", nil, "20000001"},
		{"account locked", &fakemodulus.Fault{Path: "/v1/webhooks", Status: http.StatusForbidden, Body: `{"code":"10000001","error":"Account Locked"}`}, "10000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "sk_test_FAKE-other-account-key-00" // the config's key, unless a fault answers first
			if tc.fault != nil {
				key = preflightEnv["PF_TEST_SECRET_KEY"]
			}
			fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: key, EncryptionKey: []byte(preflightEnv["PF_ENCRYPTION_KEY"])})
			if tc.fault != nil {
				fake.Fail(*tc.fault)
			}
			dir := apiOnlyConfig(t, "sandbox", "PF_TEST_SECRET_KEY", fake.URL)
			run := runPreflightBinary(t, dir, preflightEnvList(), "--config", "Caddyfile", "--live", "--json")
			rep := run.report(t)
			if run.code != 1 || checkStatus(t, rep, "live.credentials", "") != preflight.Fail {
				t.Fatalf("exit %d:\n%s", run.code, run.stdout)
			}
			c := rep.Find("live.credentials")[0]
			if !strings.Contains(c.Reason, "code "+tc.code) || !strings.Contains(c.Fix, "did not retry") {
				t.Errorf("live.credentials does not name the provider's code %s: %+v", tc.code, c)
			}
			if n := len(fake.CallsTo("/v1/webhooks")); n != 1 {
				t.Errorf("%d calls to /v1/webhooks, want exactly one", n)
			}
			if checkStatus(t, rep, "live.ping_qr", "") != preflight.OK {
				t.Errorf("ping: %+v", rep.Find("live.ping_qr"))
			}
			assertNoSecrets(t, run.stdout, preflightSecrets()...)

			// With --test-payment, the test QR is not attempted after
			// the refusal: skipped, with its reason, and nothing sent.
			if tc.fault != nil {
				fake.Fail(*tc.fault) // a fault answers once
			}
			run = runPreflightBinary(t, dir, preflightEnvList(), "--config", "Caddyfile", "--test-payment", "1.00", "--json")
			rep = run.report(t)
			if run.code != 1 || checkStatus(t, rep, "live.test_payment", "") != preflight.Skip || rep.TestPayment != nil || rep.Summary.Skip != 1 {
				t.Fatalf("exit %d:\n%s", run.code, run.stdout)
			}
			if c := rep.Find("live.test_payment")[0]; !strings.Contains(c.Reason, "refused the credentials") || !strings.Contains(c.Fix, "live.credentials") {
				t.Errorf("live.test_payment: %+v", c)
			}
			if n := len(fake.CallsTo("/v1/pay/qr")); n != 0 {
				t.Errorf("%d create-QR calls went out after the credentials were refused", n)
			}
			if n := len(fake.CallsTo("/v1/webhooks")); n != 2 {
				t.Errorf("%d calls to /v1/webhooks over two runs, want one each", n)
			}
		})
	}
}

// --test-payment: through preflight's own engine when no gateway listens;
// refused above 10.00 in production before anything is sent; a malformed
// amount is a usage error.
func TestPreflightTestPayment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env := preflightEnvList()
	t.Run("engine", func(t *testing.T) {
		fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: preflightEnv["PF_TEST_SECRET_KEY"], EncryptionKey: []byte(preflightEnv["PF_ENCRYPTION_KEY"])})
		ledgerPath := filepath.Join(t.TempDir(), "ledger.db")
		dir := apiOnlyConfig(t, "sandbox", "PF_TEST_SECRET_KEY", fake.URL, "	modulus {", "		ledger file://"+ledgerPath, "	}")
		run := runPreflightBinary(t, dir, env, "--config", "Caddyfile", "--test-payment", "1.00", "--json")
		rep := run.report(t)
		p := rep.TestPayment
		if run.code != 0 || p == nil || p.Via != "preflight" || p.Amount != "1.00" || p.Currency != "PHP" || !strings.HasPrefix(p.Reference, "PREFLIGHT-") {
			t.Fatalf("exit %d, test payment %+v:\n%s", run.code, p, run.stdout)
		}
		calls := fake.CallsTo("/v1/pay/qr")
		if len(calls) != 1 || !calls[0].Created || !strings.Contains(string(calls[0].Plaintext), `"amount":"1.00"`) {
			t.Fatalf("the provider saw %+v", calls)
		}
		if !strings.HasSuffix(p.StatusCommand, "/v1/pay/qr/"+p.ID) || !rep.Live {
			t.Errorf("status command %q, live %v", p.StatusCommand, rep.Live)
		}
		// The QR is in the ledger file, which the gateway reads once it runs.
		if c := rep.Find("live.test_payment"); len(c) != 1 || !strings.Contains(c[0].Reason, "recorded in the ledger") {
			t.Errorf("live.test_payment: %+v", c)
		}
		st, err := store.OpenFileLedger(ledgerPath, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := ledger.New(ledger.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if tx, err := l.Transaction(context.Background(), p.ID); err != nil || tx.Status != ledger.StatusPending || tx.AmountText != "1.00" {
			t.Errorf("the ledger has %+v, %v", tx, err)
		}
		b, err := os.ReadFile(p.QRImage)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) || filepath.Dir(p.QRImage) != dir {
			t.Errorf("QR image %q: %v", p.QRImage, err)
		}
	})
	t.Run("over the production limit", func(t *testing.T) {
		fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: preflightEnv["PF_LIVE_SECRET_KEY"], EncryptionKey: []byte(preflightEnv["PF_ENCRYPTION_KEY"])})
		dir := apiOnlyConfig(t, "production", "PF_LIVE_SECRET_KEY", fake.URL)
		run := runPreflightBinary(t, dir, env, "--config", "Caddyfile", "--test-payment", "10.01", "--json")
		rep := run.report(t)
		if run.code != 1 || checkStatus(t, rep, "live.test_payment", "") != preflight.Fail || rep.TestPayment != nil {
			t.Fatalf("exit %d:\n%s", run.code, run.stdout)
		}
		if c := rep.Find("live.test_payment")[0]; !strings.Contains(c.Reason, "above 10.00") || !strings.Contains(c.Reason, "nothing was sent") {
			t.Errorf("%+v", c)
		}
		if n := len(fake.CallsTo("/v1/pay/qr")); n != 0 {
			t.Errorf("%d create-QR calls went out", n)
		}
	})
	t.Run("malformed flags", func(t *testing.T) {
		dir := apiOnlyConfig(t, "sandbox", "PF_TEST_SECRET_KEY", "http://127.0.0.1:9")
		for _, args := range [][]string{
			{"--config", "Caddyfile", "--test-payment", "1"},
			{"--config", "Caddyfile", "--live", "--webhook-url", "pay.example.com/hook"},
			{"--live"},
		} {
			run := runPreflightBinary(t, dir, env, args...)
			if run.code == 0 || run.stdout != "" || run.stderr == "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, run.code, run.stdout, run.stderr)
			}
		}
	})
}

// live.certificate through the binary: with the site not running, the
// certificate is read from the files the config loads, trusted through
// SSL_CERT_FILE (the system roots of the subprocess), and fails for
// expiring in 5 of its 30 days.
func TestPreflightCertificateFromFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	now := time.Now()
	ca := testcerts.NewCA(t, "preflight test CA", now)
	certPEM, keyPEM := ca.Issue(t, "localhost", now.Add(-25*24*time.Hour), now.Add(5*24*time.Hour)).PEM(t)
	for name, b := range map[string][]byte{"ca.pem": ca.PEM(), "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf(`{
	admin off
}
https://localhost:%d {
	tls %s %s
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.PF_ENCRYPTION_KEY}
			allow_ips 127.0.0.1/32
			forward_to http://127.0.0.1:3000/
			sign_secret {env.PF_SIGN_SECRET}
			spool {env.PF_SPOOL}
		}
	}
}
`, e2e.FreePort(t), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(preflightEnvList(), "PF_SPOOL="+filepath.Join(dir, "spool", "webhooks.spool"), "SSL_CERT_FILE="+filepath.Join(dir, "ca.pem"))
	run := runPreflightBinary(t, dir, env, "--config", "Caddyfile", "--live", "--json")
	rep := run.report(t)
	c := rep.Find("live.certificate")
	if run.code != 1 || len(c) != 1 || c[0].Status != preflight.Fail ||
		!strings.Contains(c[0].Reason, "in "+filepath.Join(dir, "cert.pem")) || !strings.Contains(c[0].Reason, "issued by preflight test CA") ||
		!strings.Contains(c[0].Reason, "renewal has not happened") {
		t.Fatalf("exit %d, live.certificate %+v:\n%s", run.code, c, run.stdout)
	}
	// Without a modulus_api the registrations cannot be listed: a warning.
	if checkStatus(t, rep, "live.webhook_registered", "QRPH_SUCCESS") != preflight.Warn {
		t.Errorf("registrations: %+v", rep.Find("live.webhook_registered"))
	}
}
