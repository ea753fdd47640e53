package caddymodule

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// reloadCaddyfile is a plain-HTTP webhook endpoint on one spool, delivering
// to forwardTo, followed by the extra handlers, provisioned in the order
// written (one route block keeps it).
func reloadCaddyfile(admin string, hook int, forwardTo, extra string) string {
	return fmt.Sprintf(`{
	admin %s
	auto_https off
}

http://127.0.0.1:%d {
	route {
		modulus_webhook /webhooks/modulus {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.1/32
			forward_to     %s
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          spool/webhooks.spool
			redeliver_for  10m
			retry_backoff  100ms 500ms
		}
%s	}
}
`, admin, hook, forwardTo, extra)
}

// loadConfig POSTs a Caddyfile to the admin API's /load.
func loadConfig(t *testing.T, admin, caddyfile string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, admin+"/load", strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWebhookRefusedReloadKeepsDeliveringToTheRunningApp (issue 19): under
// load, reloads that change forward_to and that Caddy then refuses leave
// every acknowledged event to the running config's app; none reaches the
// refused config's URL. Two kinds of refusal alternate: a later handler
// whose {env.*} key is unset (after one that waits 5 s for a silent Redis,
// which widens the window the bug needs), and a second handler on the same
// spool with other delivery settings.
func TestWebhookRefusedReloadKeepsDeliveringToTheRunningApp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	admin, hook, appPort, refusedPort := e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", admin)
	app := newRecordingApp(t)
	serveApp(t, appPort, app)
	var refusedHits atomic.Int64
	serveApp(t, refusedPort, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { refusedHits.Add(1) }))
	appURL := fmt.Sprintf("http://127.0.0.1:%d/payments", appPort)
	refusedURL := fmt.Sprintf("http://127.0.0.1:%d/refused", refusedPort)
	g := e2e.Start(t, e2e.Options{Caddyfile: reloadCaddyfile(adminAddr, hook, appURL, ""), AdminAddr: adminAddr, Env: gatewayEnv()})

	// A Redis server that accepts connections and never answers: a handler
	// whose store it is takes its 5 s connect timeout to provision, as an
	// unreachable store does in production.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	refused := []string{
		// A later handler fails to provision: its key is unset. Before it, a
		// handler waits for a store that never answers.
		reloadCaddyfile(adminAddr, hook, refusedURL, fmt.Sprintf(`		modulus_webhook /webhooks/slow {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.1/32
			forward_to     http://127.0.0.1:9/unused
			spool          spool/slow.spool
			store          redis://%s/0
		}
		modulus_webhook /webhooks/other {
			decryption_key {env.QRPHGATE_E2E_UNSET_KEY}
			allow_ips      127.0.0.1/32
			forward_to     http://127.0.0.1:9/unused
			spool          spool/other.spool
		}
`, silent.Addr())),
		// A second handler names the same spool with other settings.
		reloadCaddyfile(adminAddr, hook, refusedURL, fmt.Sprintf(`		modulus_webhook /webhooks/second {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.1/32
			forward_to     %s
			spool          spool/webhooks.spool
		}
`, appURL)),
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/webhooks/modulus", hook)
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				ref := fmt.Sprintf("ORDER-RL-%d-%05d", w, i)
				a := postWebhook(t, http.DefaultClient, url, sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`), nil)
				if a.status == 200 {
					mu.Lock()
					acked = append(acked, ref)
					mu.Unlock()
				}
			}
		}()
	}
	e2e.WaitFor(t, 30*time.Second, "the first deliveries", func() bool {
		app.mu.Lock()
		defer app.mu.Unlock()
		return len(app.byRef) >= 50
	})
	const reloads = 6
	for i := range reloads {
		status, body := loadConfig(t, g.Admin(), refused[i%len(refused)])
		if status == http.StatusOK {
			t.Fatalf("reload %d was accepted; it must be refused", i)
		}
		if i%len(refused) == 1 && !strings.Contains(body, "different delivery settings") {
			t.Fatalf("refusal of two handlers on one spool: %d %s", status, body)
		}
	}
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	refs := append([]string(nil), acked...)
	mu.Unlock()
	e2e.WaitFor(t, 60*time.Second, "an empty spool", func() bool {
		return strings.Contains(getBody(t, g.Admin()+"/modulus/status"), `"pending": 0`)
	})
	missing := 0
	for _, ref := range refs {
		if app.count(ref) == 0 {
			missing++
		}
	}
	t.Logf("%d refused reloads under load: %d events acknowledged, %d delivered to the running app, %d deliveries to the refused config's URL",
		reloads, len(refs), len(refs)-missing, refusedHits.Load())
	if missing != 0 {
		t.Errorf("%d acknowledged events never reached the running app", missing)
	}
	if n := refusedHits.Load(); n != 0 {
		t.Fatalf("%d deliveries reached the refused config's forward_to", n)
	}
	if !strings.Contains(getBody(t, g.Admin()+"/modulus/status"), `"forward_to": "`+appURL+`"`) {
		t.Fatal("status does not show the running config's forward_to")
	}
}
