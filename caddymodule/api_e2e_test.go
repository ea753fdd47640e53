package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/apispec"
	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// TestAPIEndToEnd runs the real binary with a Caddyfile against the fake
// provider: create, replay, PNG, ping, webhook management, metrics, status,
// the breaker surviving a reload, the credentials fuse reset by a reload,
// and no secret in the logs or in `qrphgate adapt`.
func TestAPIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Setenv("QG_E2E_SECRET", fakeSandboxKey)
	t.Setenv("QG_E2E_ENC", fakeEncryptionKey)
	t.Setenv("QG_E2E_ACT", fakeActivation)
	fake := fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
	admin := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	port, mport := e2e.FreePort(t), e2e.FreePort(t)
	caddyfile := fmt.Sprintf(`{
	admin %s
	debug
}
http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.QG_E2E_SECRET}
		encryption_key  {env.QG_E2E_ENC}
		activation_code {env.QG_E2E_ACT}
		qr_url          %s
		webhooks_url    %s
		circuit_breaker failures 2 window 1m open 10m probes 1
		auth_failures   2
	}
}
http://127.0.0.1:%d {
	modulus_metrics
}
`, admin, port, fake.URL, fake.URL, mport)
	g := e2e.Start(t, e2e.Options{AdminAddr: admin, Caddyfile: caddyfile})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	spec := apispec.Load(t)

	// Every answer of the binary is checked against proxy/openapi.json.
	call := func(method, path, body string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := spec.CheckResponse(req, resp.StatusCode, resp.Header, b); err != nil {
			t.Errorf("the binary's answer does not match proxy/openapi.json: %v", err)
		}
		return resp, b
	}
	create := func(ref string, hdr ...string) (*http.Response, []byte) {
		return call("POST", "/v1/pay/qr", `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"`+ref+`"}`, hdr...)
	}

	resp, body := create("E2E-1")
	var qr outbound.CreateQRResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &qr) != nil || qr.ID == "" || qr.Amount != "500.00" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if got := string(fake.CallsTo("/v1/pay/qr")[0].Plaintext); !strings.Contains(got, `"activationCode":"`+fakeActivation+`"`) {
		t.Fatalf("provider decrypted %s", got)
	}
	if resp, body := create("E2E-1"); resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "true" || !strings.Contains(string(body), qr.ID) {
		t.Fatalf("replay: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := create("E2E-2", "Accept: image/png"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(body, fake.PNG()) {
		t.Fatalf("png: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, body := call("POST", "/v1/pay/qr", `{"amount":500,"currency":"PHP","merchantReferenceNumber":"E2E-3"}`); resp.StatusCode != 400 || !strings.Contains(string(body), `"invalid_amount"`) {
		t.Fatalf("validation: %d %s", resp.StatusCode, body)
	}
	if resp, body := call("GET", "/ping", ""); resp.StatusCode != 200 || string(body) != "Pong!" {
		t.Fatalf("ping: %d %s", resp.StatusCode, body)
	}
	if resp, body := call("GET", "/openapi.json", ""); resp.StatusCode != 200 || !bytes.Equal(body, proxy.OpenAPI()) {
		t.Fatalf("GET /openapi.json: %d, not the embedded document", resp.StatusCode)
	}
	if resp, body := call("POST", "/v1/webhooks", `{"callbackUrl":"https://pay.example.com/hook","webhookAction":"QRPH_SUCCESS"}`); resp.StatusCode != 201 {
		t.Fatalf("webhook create: %d %s", resp.StatusCode, body)
	}
	if resp, body := call("GET", "/v1/webhooks", ""); resp.StatusCode != 200 || !strings.Contains(string(body), "pay.example.com") {
		t.Fatalf("webhook list: %d %s", resp.StatusCode, body)
	}

	// The credentials fuse: two 401s stop authenticated calls...
	fake.Fail(fakemodulus.Fault{Status: 401}, fakemodulus.Fault{Status: 401})
	create("E2E-A1")
	create("E2E-A2")
	if resp, body := create("E2E-A3"); resp.StatusCode != 503 || !strings.Contains(string(body), `"credentials_rejected"`) {
		t.Fatalf("fuse: %d %s", resp.StatusCode, body)
	}
	// ...until a reload.
	cfgPath := filepath.Join(g.Dir(), "Caddyfile")
	reload := func() {
		t.Helper()
		if out, err := e2e.Run(t, g.Dir(), "reload", "--config", cfgPath, "--address", admin, "--force"); err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
		// The reload closes the old server's idle keep-alive connections;
		// a POST sent on one as it closes gets EOF and is not retried by
		// the client (docs/operations.md). An app reconnects: so does this.
		http.DefaultClient.CloseIdleConnections()
	}
	reload()
	if resp, body := create("E2E-A3"); resp.StatusCode != 200 {
		t.Fatalf("after reload: %d %s", resp.StatusCode, body)
	}

	// The breaker opens after two 5xx and stays open across a reload.
	fake.Fail(fakemodulus.Fault{Status: 500}, fakemodulus.Fault{Status: 503})
	create("E2E-B1")
	create("E2E-B2")
	if resp, _ := create("E2E-B3"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("breaker: %d", resp.StatusCode)
	}
	reload()
	calls := len(fake.Calls())
	if resp, body := create("E2E-B4"); resp.StatusCode != 503 || !strings.Contains(string(body), `"breaker_open"`) {
		t.Fatalf("breaker after reload: %d %s", resp.StatusCode, body)
	}
	if len(fake.Calls()) != calls {
		t.Fatal("a call went through the open breaker")
	}

	statusResp, err := http.Get(g.Admin() + "/modulus/status")
	if err != nil {
		t.Fatal(err)
	}
	defer statusResp.Body.Close()
	var st map[string]map[string]outbound.Status
	if err := json.NewDecoder(statusResp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var out outbound.Status
	for _, v := range st["outbound"] {
		out = v
	}
	if out.Breakers["qr"].State != "open" || out.Breakers["webhooks"].State != "closed" || out.Limiter.Used < 8 || out.Limiter.Limit != 100 {
		t.Fatalf("status %+v", st)
	}

	mresp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`qrphgate_outbound_upstream_requests_total{environment="sandbox",endpoint="create_qr",status="200"}`,
		`qrphgate_outbound_upstream_requests_total{environment="sandbox",endpoint="webhooks_create",status="201"}`,
		`qrphgate_outbound_breaker_state{environment="sandbox",account="` + outbound.AccountID(fakeSandboxKey) + `",upstream="qr"} 2`,
		`qrphgate_outbound_credentials_rejected_total{environment="sandbox"} 1`,
		`qrphgate_outbound_idempotent_replays_total{environment="sandbox"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Nothing secret in the logs (at debug level) or in the adapted config.
	adapted, err := e2e.Run(t, g.Dir(), "adapt", "--config", cfgPath)
	if err != nil || !strings.Contains(adapted, "{env.QG_E2E_SECRET}") {
		t.Fatalf("adapt: %v\n%s", err, adapted)
	}
	logs := g.Logs()
	if !strings.Contains(logs, "E2E-1") || !strings.Contains(logs, qr.ID) {
		t.Fatalf("logs lack the reference and transaction id:\n%s", logs)
	}
	secrets := map[string]string{
		"secret key":       fakeSandboxKey,
		"Basic credential": base64.StdEncoding.EncodeToString([]byte(fakeSandboxKey + ":")),
		"encryption key":   fakeEncryptionKey,
		"activation code":  fakeActivation,
		"QR image":         base64.StdEncoding.EncodeToString(fake.PNG())[:40],
	}
	for i, tok := range fake.Tokens() {
		secrets[fmt.Sprintf("token %d", i)] = tok
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in the gateway's logs", what)
		}
		if strings.Contains(adapted, s) {
			t.Errorf("the %s appears in the adapted config", what)
		}
	}
}
