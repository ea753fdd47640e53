package caddymodule

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// gatewayPorts are the listeners of one end-to-end gateway.
type gatewayPorts struct {
	admin, https, http, metrics, app int
}

func newGatewayPorts(t *testing.T) gatewayPorts {
	return gatewayPorts{admin: e2e.FreePort(t), https: e2e.FreePort(t), http: e2e.FreePort(t), metrics: e2e.FreePort(t), app: e2e.FreePort(t)}
}

func (p gatewayPorts) adminAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.admin) }

func (p gatewayPorts) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", p.https, path)
}

// gatewayCaddyfile is a real deployment in miniature: TLS from Caddy's
// local CA, 127.0.0.2 as the only trusted proxy (strict mode), one route
// that admits loopback and one that admits only 203.0.113.0/24, both
// sharing one spool and delivering signed events to the app. Events become
// dead letters after 3s of failed deliveries.
func gatewayCaddyfile(p gatewayPorts) string { return gatewayCaddyfileRedeliverFor(p, "3s") }

// gatewayCaddyfileRedeliverFor is gatewayCaddyfile with another
// redeliver_for.
func gatewayCaddyfileRedeliverFor(p gatewayPorts, redeliverFor string) string {
	return fmt.Sprintf(`{
	admin %s
	http_port %d
	https_port %d
	skip_install_trust
	auto_https disable_redirects
	servers {
		trusted_proxies static 127.0.0.2/32
		client_ip_headers X-Forwarded-For
		trusted_proxies_strict
	}
}

https://127.0.0.1:%d {
	tls internal
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			decryption_key {env.QRPHGATE_E2E_KEY_2}
			allow_ips      127.0.0.1/32
			forward_to     http://127.0.0.1:%d/payments
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          spool/webhooks.spool
			redeliver_for  %s
			retry_backoff  100ms 500ms
		}
	}
	route /webhooks/behind-proxy {
		modulus_webhook {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      203.0.113.0/24
			forward_to     http://127.0.0.1:%d/payments
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          spool/webhooks.spool
			redeliver_for  %s
			retry_backoff  100ms 500ms
		}
	}
}

http://127.0.0.1:%d {
	modulus_metrics
}
`, p.adminAddr(), p.http, p.https, p.https, p.app, redeliverFor, p.app, redeliverFor, p.metrics)
}

const e2eSignSecret = "whsec_VEVTVC1PTkxZLWZha2Utc2lnbmluZy1rZXktMzJieSE=" // base64 of a fake 32-byte key

func gatewayEnv() []string {
	return []string{
		"QRPHGATE_E2E_KEY_1=" + testWebhookKey,
		"QRPHGATE_E2E_KEY_2=TEST-ONLY-rotated-key-not-real-2",
		"QRPHGATE_E2E_SIGN=" + e2eSignSecret,
	}
}

// tlsClient trusts only the gateway's local CA and connects from localIP.
func tlsClient(t *testing.T, dir, localIP string) *http.Client {
	t.Helper()
	root := filepath.Join(dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	e2e.WaitFor(t, 30*time.Second, "Caddy's local root certificate", func() bool {
		_, err := os.Stat(root)
		return err == nil
	})
	pem, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("root.crt holds no certificate")
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext:     dialer.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
	}
}

type e2eAnswer struct {
	status int
	body   string
}

func postWebhook(t *testing.T, c *http.Client, url, body string, header map[string]string) e2eAnswer {
	t.Helper()
	var last error
	for i := 0; i < 100; i++ { // the certificate may still be being issued
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			last = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return e2eAnswer{resp.StatusCode, string(b)}
	}
	t.Fatalf("POST %s: %v", url, last)
	return e2eAnswer{}
}

// recordingApp is the app stand-in: it verifies every signature with its
// own HMAC and counts deliveries per reference.
type recordingApp struct {
	t        *testing.T
	mu       sync.Mutex
	status   int
	byRef    map[string]int
	ids      map[string]string // reference -> Webhook-Id
	badSig   int
	bodies   map[string]string
	attempts map[string]string // reference -> last Webhook-Attempt
}

func newRecordingApp(t *testing.T) *recordingApp {
	return &recordingApp{t: t, status: 200, byRef: map[string]int{}, ids: map[string]string{}, bodies: map[string]string{}, attempts: map[string]string{}}
}

func (a *recordingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(e2eSignSecret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.Header.Get("Webhook-Id") + "." + r.Header.Get("Webhook-Timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	var p struct {
		Ref string `json:"referenceNumber"`
	}
	_ = json.Unmarshal(body, &p)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !hmac.Equal([]byte(r.Header.Get("Webhook-Signature")), []byte(want)) {
		a.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a.attempts[p.Ref] = r.Header.Get("Webhook-Attempt")
	if a.status/100 == 2 {
		a.byRef[p.Ref]++
		a.ids[p.Ref] = r.Header.Get("Webhook-Id")
		a.bodies[p.Ref] = string(body)
	}
	w.WriteHeader(a.status)
}

func (a *recordingApp) setStatus(s int) {
	a.mu.Lock()
	a.status = s
	a.mu.Unlock()
}

func (a *recordingApp) count(ref string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byRef[ref]
}

// serveApp runs the app on 127.0.0.1:port until the test ends.
func serveApp(t *testing.T, port int, h http.Handler) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func loadVectorBody(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "proxy", "inbound", "testdata", "webhook-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf struct {
		Vectors []struct{ Name, Body string } `json:"vectors"`
	}
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	for _, v := range vf.Vectors {
		if v.Name == name {
			return v.Body
		}
	}
	t.Fatalf("no vector %q", name)
	return ""
}

// inboundPending is the number of events pending in every spool, from
// GET /modulus/status on the admin API at admin (-1 if unreadable).
func inboundPending(t *testing.T, admin string) int {
	t.Helper()
	var st struct {
		Inbound map[string]struct {
			Pending int `json:"pending"`
		} `json:"inbound"`
	}
	if json.Unmarshal([]byte(getBody(t, admin+"/modulus/status")), &st) != nil || len(st.Inbound) == 0 {
		return -1
	}
	n := 0
	for _, s := range st.Inbound {
		n += s.Pending
	}
	return n
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestWebhookEndToEnd runs the real binary over TLS: a Node-made webhook is
// delivered signed and verbatim, once; the client IP is Caddy's (a spoofed
// X-Forwarded-For from an untrusted peer, or prepended through the trusted
// proxy, gets 403); a failing app turns an event into a dead letter that
// the admin API lists and replays.
func TestWebhookEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newGatewayPorts(t)
	app := newRecordingApp(t)
	serveApp(t, p.app, app)
	g := e2e.Start(t, e2e.Options{Caddyfile: gatewayCaddyfile(p), AdminAddr: p.adminAddr(), Env: gatewayEnv()})
	direct := tlsClient(t, g.Dir(), "127.0.0.1")
	viaProxy := tlsClient(t, g.Dir(), "127.0.0.2")

	// A webhook sealed by panva/jose, in the provider's "data" envelope.
	body := loadVectorBody(t, "data envelope, payload-page shape")
	if a := postWebhook(t, direct, p.url("/webhooks/modulus"), body, nil); a.status != 200 || a.body != "{\"received\":true}\n" {
		t.Fatalf("webhook: %d %s", a.status, a.body)
	}
	e2e.WaitFor(t, 15*time.Second, "the delivery", func() bool { return app.count("ORDER-NODE-1") == 1 })
	app.mu.Lock()
	got := app.bodies["ORDER-NODE-1"]
	app.mu.Unlock()
	if got != `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-NODE-1","amount":9800,"currency":"PHP","timestamp":"2026-01-15T10:30:00Z"}` {
		t.Fatalf("delivered body %q", got)
	}
	if a := postWebhook(t, direct, p.url("/webhooks/modulus"), body, nil); a.status != 200 || !strings.Contains(a.body, "duplicate") {
		t.Fatalf("replayed token: %d %s", a.status, a.body)
	}
	// Rejections never reach the app.
	for name, want := range map[string]int{"encrypted with a key not configured": 400, "zip DEF": 400, "both data and Token": 400, "payload without a reference": 422} {
		if a := postWebhook(t, direct, p.url("/webhooks/modulus"), loadVectorBody(t, name), nil); a.status != want {
			t.Fatalf("%s: %d %s, want %d", name, a.status, a.body, want)
		}
	}

	// Client IP: allow_ips 203.0.113.0/24 on /webhooks/behind-proxy.
	spoofBody := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-XFF"}`)
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	if a := postWebhook(t, direct, p.url("/webhooks/behind-proxy"), spoofBody, xff("203.0.113.10")); a.status != 403 || !strings.Contains(a.body, "forbidden_ip") {
		t.Fatalf("spoofed X-Forwarded-For from an untrusted peer: %d %s", a.status, a.body)
	}
	if a := postWebhook(t, viaProxy, p.url("/webhooks/behind-proxy"), spoofBody, xff("203.0.113.10, 198.51.100.66")); a.status != 403 {
		t.Fatalf("address prepended through the trusted proxy (strict mode takes the rightmost): %d %s", a.status, a.body)
	}
	if a := postWebhook(t, viaProxy, p.url("/webhooks/behind-proxy"), spoofBody, xff("203.0.113.10")); a.status != 200 {
		t.Fatalf("through the trusted proxy: %d %s", a.status, a.body)
	}
	e2e.WaitFor(t, 15*time.Second, "the proxied delivery", func() bool { return app.count("ORDER-XFF") == 1 })

	// Dead letter and replay through the admin API.
	app.setStatus(503)
	dead := sealWebhook(t, `{"action":"QRPH_DECLINED","referenceNumber":"ORDER-DEAD"}`)
	if a := postWebhook(t, direct, p.url("/webhooks/modulus"), dead, map[string]string{"activation-code": "TEST-0000-0000-0001"}); a.status != 200 {
		t.Fatalf("webhook: %d", a.status)
	}
	var list struct {
		DeadLetters []struct {
			ID, Reference string
			Attempts      int
		} `json:"dead_letters"`
	}
	e2e.WaitFor(t, 30*time.Second, "the dead letter", func() bool {
		_ = json.Unmarshal([]byte(getBody(t, g.Admin()+"/modulus/dead-letters")), &list)
		return len(list.DeadLetters) == 1
	})
	if list.DeadLetters[0].Reference != "ORDER-DEAD" || list.DeadLetters[0].Attempts < 2 {
		t.Fatalf("dead letters %+v", list)
	}
	statusJSON := getBody(t, g.Admin()+"/modulus/status")
	if !strings.Contains(statusJSON, `"dead_letters": 1`) || !strings.Contains(statusJSON, `"inbound"`) {
		t.Fatalf("status: %s", statusJSON)
	}
	app.setStatus(200)
	resp, err := http.Post(g.Admin()+"/modulus/dead-letters/"+list.DeadLetters[0].ID+"/replay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	e2e.WaitFor(t, 15*time.Second, "the replayed delivery", func() bool { return app.count("ORDER-DEAD") == 1 })
	app.mu.Lock()
	badSig, id := app.badSig, app.ids["ORDER-DEAD"]
	app.mu.Unlock()
	if badSig != 0 || id != list.DeadLetters[0].ID {
		t.Fatalf("%d deliveries failed signature verification; replayed id %s", badSig, id)
	}

	// The app counts a delivery before the gateway records it done.
	e2e.WaitFor(t, 15*time.Second, "an empty spool", func() bool {
		return inboundPending(t, g.Admin()) == 0
	})
	metrics := getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.metrics))
	for _, want := range []string{`qrphgate_webhooks_received_total{result="forbidden_ip"} 2`, `qrphgate_webhooks_received_total{result="duplicate"} 1`,
		`qrphgate_webhooks_received_total{result="decrypt_failed"} 1`, `qrphgate_webhook_dead_lettered_total{reason="expired"} 1`, `qrphgate_webhook_spool_depth 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, secret := range []string{testWebhookKey, "TEST-ONLY-rotated-key-not-real-2", e2eSignSecret, "ORDER-NODE-1\",\"amount"} {
		if g.Contains(secret) || strings.Contains(getBody(t, g.Admin()+"/config/"), secret) {
			t.Fatalf("a secret or a decrypted body reached the logs or the config: %.24s", secret)
		}
	}
}

// TestWebhookCrashSafety: acknowledge a batch while the app is down,
// SIGKILL the gateway, restart it on the same data, bring the app up:
// every acknowledged event is delivered, none twice (the app answers 2xx).
// The redelivery window is minutes, so that on a slow machine no event
// becomes a dead letter before the restart.
func TestWebhookCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newGatewayPorts(t)
	opts := e2e.Options{Caddyfile: gatewayCaddyfileRedeliverFor(p, "10m"), AdminAddr: p.adminAddr(), Env: gatewayEnv(), Dir: t.TempDir()}
	g := e2e.Start(t, opts)
	client := tlsClient(t, g.Dir(), "127.0.0.1")
	const n = 60
	var wg sync.WaitGroup
	acked := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := fmt.Sprintf("ORDER-CRASH-%03d", i)
			body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`)
			if a := postWebhook(t, client, p.url("/webhooks/modulus"), body, nil); a.status == 200 {
				acked <- ref
			}
		}()
	}
	wg.Wait()
	close(acked)
	if len(acked) != n {
		t.Fatalf("%d of %d webhooks acknowledged", len(acked), n)
	}
	g.Kill() // no chance to flush anything

	app := newRecordingApp(t)
	serveApp(t, p.app, app)
	e2e.Start(t, opts) // same Dir: same spool file
	for ref := range acked {
		e2e.WaitFor(t, 60*time.Second, "delivery of "+ref, func() bool { return app.count(ref) >= 1 })
	}
	e2e.WaitFor(t, 30*time.Second, "an empty spool", func() bool {
		return inboundPending(t, "http://"+p.adminAddr()) == 0
	})
	time.Sleep(300 * time.Millisecond) // room for a stray second delivery to show
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.byRef) != n {
		t.Fatalf("%d distinct events delivered, want %d", len(app.byRef), n)
	}
	for ref, c := range app.byRef {
		if c != 1 {
			t.Errorf("%s delivered %d times though the app answered 2xx", ref, c)
		}
	}
}

// TestWebhookReloadKeepsDelivering: an event waiting for an app that is
// down is delivered to the new forward_to after `caddy reload` (POST /load):
// the worker and its open spool carried over, and the reload did not try
// to open the locked spool file a second time.
func TestWebhookReloadKeepsDelivering(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newGatewayPorts(t) // nothing listens on p.app: the first app is down
	// A redelivery window of minutes: a slow reload must not dead-letter the event.
	conf := gatewayCaddyfileRedeliverFor(p, "10m")
	g := e2e.Start(t, e2e.Options{Caddyfile: conf, AdminAddr: p.adminAddr(), Env: gatewayEnv()})
	client := tlsClient(t, g.Dir(), "127.0.0.1")
	if a := postWebhook(t, client, p.url("/webhooks/modulus"), sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-RELOAD"}`), nil); a.status != 200 {
		t.Fatalf("webhook: %d", a.status)
	}
	newApp := newRecordingApp(t)
	newPort := e2e.FreePort(t)
	serveApp(t, newPort, newApp)
	cfg := strings.ReplaceAll(conf, fmt.Sprintf("127.0.0.1:%d/payments", p.app), fmt.Sprintf("127.0.0.1:%d/payments", newPort))
	req, _ := http.NewRequest(http.MethodPost, g.Admin()+"/load", strings.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %d %s", resp.StatusCode, b)
	}
	e2e.WaitFor(t, 30*time.Second, "delivery to the reloaded forward_to", func() bool { return newApp.count("ORDER-RELOAD") == 1 })
	if !strings.Contains(getBody(t, g.Admin()+"/modulus/status"), fmt.Sprintf(`"forward_to": "http://127.0.0.1:%d/payments"`, newPort)) {
		t.Fatal("status does not show the reloaded forward_to")
	}
}

// TestWebhookReplayUnderAnotherHeaderDeliveredOnce (issue 13): a captured
// token replayed with no activation-code header, with a made-up one and
// with the real code in lower case is the same payment: exactly one
// delivery, one Webhook-Id.
func TestWebhookReplayUnderAnotherHeaderDeliveredOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newGatewayPorts(t)
	app := newRecordingApp(t)
	var ids sync.Map // Webhook-Id -> struct{}
	serveApp(t, p.app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids.Store(r.Header.Get("Webhook-Id"), struct{}{})
		app.ServeHTTP(w, r)
	}))
	g := e2e.Start(t, e2e.Options{Caddyfile: gatewayCaddyfileRedeliverFor(p, "10m"), AdminAddr: p.adminAddr(), Env: gatewayEnv()})
	client := tlsClient(t, g.Dir(), "127.0.0.1")
	body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-REPLAY","transactionId":"c94b99f8-e6cc-49a5-97ab-7a31d37381fe"}`)
	headers := []map[string]string{
		{"activation-code": "TEST-0000-0000-0001"}, // the provider's own copy
		nil,
		{"activation-code": "EVIL-0000-0000-0001"},
		{"activation-code": "test-0000-0000-0001"},
	}
	duplicates := 0
	for _, h := range headers {
		a := postWebhook(t, client, p.url("/webhooks/modulus"), body, h)
		if a.status != 200 {
			t.Fatalf("header %v: %d %s", h, a.status, a.body)
		}
		if strings.Contains(a.body, `"duplicate":true`) {
			duplicates++
		}
	}
	e2e.WaitFor(t, 15*time.Second, "the delivery", func() bool { return app.count("ORDER-REPLAY") >= 1 })
	e2e.WaitFor(t, 15*time.Second, "an empty spool", func() bool {
		return inboundPending(t, g.Admin()) == 0
	})
	distinct := 0
	ids.Range(func(_, _ any) bool { distinct++; return true })
	t.Logf("%d copies sent, %d answered as duplicates, %d deliveries, %d Webhook-Ids", len(headers), duplicates, app.count("ORDER-REPLAY"), distinct)
	if n := app.count("ORDER-REPLAY"); n != 1 || distinct != 1 || duplicates != len(headers)-1 {
		t.Fatalf("%d deliveries with %d Webhook-Ids (%d duplicates answered); want exactly one delivery", n, distinct, duplicates)
	}
}
