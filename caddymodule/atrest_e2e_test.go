package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/store"
)

// e2eAtRestKey is an obviously fake 32-byte at-rest key.
const e2eAtRestKey = "FAKE-TEST-at-rest-key-e2e-000001"

// atRestCaddyfile runs one webhook route on plain HTTP with a file spool in
// dir, the history kept for an hour, the audit trail in dir/audit, and,
// when withKey, at_rest_key.
func atRestCaddyfile(p gatewayPorts, dir string, withKey bool) string {
	key := ""
	if withKey {
		key = "at_rest_key {env.QRPHGATE_E2E_AT_REST}"
	}
	return fmt.Sprintf(`{
	admin %s
	auto_https off
	modulus {
		%s
		audit_log %s
	}
}

http://127.0.0.1:%d {
	modulus_webhook {
		decryption_key      {env.QRPHGATE_E2E_KEY_1}
		allow_ips           127.0.0.1/32
		forward_to          http://127.0.0.1:%d/payments
		sign_secret         {env.QRPHGATE_E2E_SIGN}
		spool               %s
		redeliver_for       1h
		retry_backoff       100ms 500ms
		delivered_retention 1h
	}
}

http://127.0.0.1:%d {
	modulus_metrics
}
`, p.adminAddr(), key, filepath.Join(dir, "audit", "audit.log"), p.http, p.app, filepath.Join(dir, "webhooks.spool"), p.metrics)
}

func atRestEnv() []string {
	return append(gatewayEnv(), "QRPHGATE_E2E_AT_REST="+e2eAtRestKey)
}

func adminJSON(t *testing.T, method, url string, body any, into any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		_ = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode
}

// TestAtRestEndToEnd runs the real binary with at_rest_key and audit_log:
// webhooks are delivered, kept in the history (listed without payloads,
// replayed with their original Webhook-Id), the spool file holds no
// payment data, and the audit trail verifies. Restarted without the key, a
// pending event cannot be decrypted: it is never delivered, it becomes a
// dead letter with reason undecryptable; with the key back it is replayed
// and delivered.
func TestAtRestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newGatewayPorts(t)
	app := newRecordingApp(t)
	serveApp(t, p.app, app)
	dir := t.TempDir()
	start := func(withKey bool) *e2e.Gateway {
		return e2e.Start(t, e2e.Options{Caddyfile: atRestCaddyfile(p, dir, withKey), AdminAddr: p.adminAddr(), Env: atRestEnv(), Dir: dir})
	}
	g := start(true)
	url := fmt.Sprintf("http://127.0.0.1:%d/webhooks/modulus", p.http)
	body := func(ref string) string {
		return sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`","amount":"98765.43","note":"PAYLOAD-MARKER-e2e"}`)
	}
	for _, ref := range []string{"ORDER-ATREST-1", "ORDER-ATREST-2"} {
		if a := postWebhook(t, http.DefaultClient, url, body(ref), nil); a.status != 200 {
			t.Fatalf("%s: %d %s", ref, a.status, a.body)
		}
	}
	postWebhook(t, http.DefaultClient, url, body("ORDER-ATREST-1"), nil) // a duplicate
	if a := postWebhook(t, http.DefaultClient, url, `{"data":"not.a.token.at.all"}`, nil); a.status != 400 {
		t.Fatalf("bad token: %d", a.status)
	}
	e2e.WaitFor(t, 30*time.Second, "both deliveries", func() bool { return app.count("ORDER-ATREST-1") == 1 && app.count("ORDER-ATREST-2") == 1 })

	// The history lists the delivered event, its reference decrypted, no
	// payload.
	var page eventsPage
	e2e.WaitFor(t, 10*time.Second, "the delivered event in the history", func() bool {
		adminJSON(t, http.MethodGet, g.Admin()+"/modulus/events?reference=ORDER-ATREST-1", nil, &page)
		return len(page.Events) == 1 && page.Events[0].Status == store.StatusDelivered
	})
	raw := getBody(t, g.Admin()+"/modulus/events?status=delivered")
	if !strings.Contains(raw, "ORDER-ATREST-2") || strings.Contains(raw, "PAYLOAD-MARKER") || strings.Contains(raw, "98765") {
		t.Fatalf("listing: %s", raw)
	}
	firstID := app.ids["ORDER-ATREST-1"]
	var rep replayAnswer
	if code := adminJSON(t, http.MethodPost, g.Admin()+"/modulus/events/replay", replayRequest{Reference: "ORDER-ATREST-1"}, &rep); code != 200 || rep.Queued != 1 || rep.Matched != 1 {
		t.Fatalf("replay: %d %+v", code, rep)
	}
	e2e.WaitFor(t, 30*time.Second, "the replayed delivery", func() bool { return app.count("ORDER-ATREST-1") == 2 })
	if id := app.ids["ORDER-ATREST-1"]; id != firstID {
		t.Fatalf("replayed with Webhook-Id %s, first delivered as %s", id, firstID)
	}
	if code := adminJSON(t, http.MethodPost, g.Admin()+"/modulus/events/replay", map[string]string{"status": "delivered"}, nil); code != 400 {
		t.Fatalf("a replay without a reference or time range: %d", code)
	}

	// One more webhook while the app is down: it stays pending.
	app.setStatus(http.StatusServiceUnavailable)
	if a := postWebhook(t, http.DefaultClient, url, body("ORDER-ATREST-3"), nil); a.status != 200 {
		t.Fatalf("third: %d", a.status)
	}
	g.Stop()

	spool, err := os.ReadFile(filepath.Join(dir, "webhooks.spool"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"ORDER-ATREST", "PAYLOAD-MARKER", "98765.43"} {
		if bytes.Contains(spool, []byte(secret)) {
			t.Errorf("the spool file holds %q in plain text", secret)
		}
	}
	trail := filepath.Join(dir, "audit", "audit.log")
	auditBytes, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"event":"webhook_accepted"`, `"event":"webhook_duplicate"`, `"event":"webhook_refused"`, `"code":"bad_token"`,
		`"event":"delivery"`, `"event":"replay"`, `"reference":"ORDER-ATREST-1"`} {
		if !bytes.Contains(auditBytes, []byte(want)) {
			t.Errorf("the audit trail lacks %s", want)
		}
	}
	for _, secret := range []string{"PAYLOAD-MARKER", "98765", testWebhookKey, e2eAtRestKey, "whsec_", "v1,"} {
		if bytes.Contains(auditBytes, []byte(secret)) {
			t.Errorf("the audit trail holds %q", secret)
		}
	}
	if st, _ := os.Stat(trail); st.Mode().Perm() != 0o600 {
		t.Errorf("audit trail mode %v", st.Mode().Perm())
	}
	if out, err := e2e.Run(t, dir, "modulus", "audit", "verify", trail); err != nil || !strings.Contains(out, "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	tampered := filepath.Join(dir, "tampered.log")
	_ = os.WriteFile(tampered, bytes.Replace(auditBytes, []byte("ORDER-ATREST-2"), []byte("ORDER-ATREST-9"), 1), 0o600)
	if out, err := e2e.Run(t, dir, "modulus", "audit", "verify", tampered); err == nil || !strings.Contains(out, "audit trail broken at") {
		t.Fatalf("a tampered trail verified: %v\n%s", err, out)
	}

	// Without the key: the pending event cannot be decrypted.
	app.setStatus(http.StatusOK)
	g = start(false)
	var dl struct {
		DeadLetters []deadLetter `json:"dead_letters"`
	}
	e2e.WaitFor(t, 30*time.Second, "the undecryptable dead letter", func() bool {
		adminJSON(t, http.MethodGet, g.Admin()+"/modulus/dead-letters", nil, &dl)
		return len(dl.DeadLetters) == 1
	})
	if d := dl.DeadLetters[0]; d.Reason != "undecryptable" || d.Reference != "" || !strings.HasPrefix(d.LastError, "undecryptable: ") {
		t.Fatalf("dead letter %+v", d)
	}
	metrics := getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.metrics))
	if v := pageMetric(metrics, `qrphgate_webhook_dead_lettered_total{reason="undecryptable"}`); v != 1 {
		t.Fatalf("undecryptable dead letters counted %v", v)
	}
	if !g.Contains("cannot be decrypted with the configured at_rest_key") {
		t.Fatal("the undecryptable event was not logged")
	}
	if app.count("ORDER-ATREST-3") != 0 {
		t.Fatal("an undecryptable event was delivered")
	}
	id := dl.DeadLetters[0].ID
	g.Stop()

	// The key is back: the dead letter replays and is delivered whole.
	g = start(true)
	if code := adminJSON(t, http.MethodPost, g.Admin()+"/modulus/dead-letters/"+id+"/replay", nil, nil); code != 200 {
		t.Fatalf("replay of the dead letter: %d", code)
	}
	e2e.WaitFor(t, 30*time.Second, "the recovered delivery", func() bool { return app.count("ORDER-ATREST-3") == 1 })
	if b := app.bodies["ORDER-ATREST-3"]; !strings.Contains(b, "PAYLOAD-MARKER-e2e") {
		t.Fatalf("recovered body %s", b)
	}
	g.Stop()
	if out, err := e2e.Run(t, dir, "modulus", "audit", "verify", trail); err != nil || !strings.Contains(out, "ok: ") {
		t.Fatalf("audit verify after three runs: %v\n%s", err, out)
	}
}

// TestAtRestReencryptionSurvivesKill fills a spool file with plain events
// (a spool written before at_rest_key), starts the real binary with the
// key, kills it (SIGKILL) in the middle of the re-encryption pass, and
// checks that every event is still there and readable, some already
// sealed and some still plain; a restart finishes the pass, and the next
// open of the file leaves no payment data in it.
func TestAtRestReencryptionSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const n = 3000
	dir := t.TempDir()
	path := filepath.Join(dir, "webhooks.spool")
	now := time.Now()
	ref := func(i int) string { return fmt.Sprintf("ORDER-KILL-%04d", i) }
	bodyOf := func(i int) []byte {
		return []byte(`{"action":"QRPH_SUCCESS","referenceNumber":"` + ref(i) + `","note":"PAYLOAD-MARKER-kill"}`)
	}
	s, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		// Due in a day: the gateway seals them but does not deliver them.
		ev := store.SpoolEvent{ID: fmt.Sprintf("evt_%05d", i), Action: "QRPH_SUCCESS", Reference: ref(i), Body: bodyOf(i),
			Received: now, RetryFrom: now, NextAttempt: now.Add(24 * time.Hour)}
		if err := s.Put(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()

	p := newGatewayPorts(t)
	conf := atRestCaddyfile(p, dir, true)
	g := e2e.Start(t, e2e.Options{Caddyfile: conf, AdminAddr: p.adminAddr(), Env: atRestEnv(), Dir: dir})
	resealed := func() float64 {
		return pageMetric(getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.metrics)), `qrphgate_at_rest_resealed_total{part="spool"}`)
	}
	e2e.WaitFor(t, 60*time.Second, "the pass under way", func() bool { return resealed() >= 200 })
	g.Kill()

	// Every event readable; the kill fell between batches of the pass.
	sl, err := store.NewSealer([]byte(e2eAtRestKey))
	if err != nil {
		t.Fatal(err)
	}
	plain, sealed := countSealed(t, path, sl, n, bodyOf)
	t.Logf("killed mid-pass: %d events sealed, %d still plain", sealed, plain)
	if sealed == 0 || plain == 0 {
		t.Fatalf("the kill was not in the middle of the pass: %d sealed, %d plain", sealed, plain)
	}

	// A restart finishes the pass; the next open compacts the file.
	g = e2e.Start(t, e2e.Options{Caddyfile: conf, AdminAddr: p.adminAddr(), Env: atRestEnv(), Dir: dir})
	e2e.WaitFor(t, 120*time.Second, "the pass done", func() bool {
		var st struct {
			AtRest map[string]atRestStatus `json:"at_rest"`
		}
		adminJSON(t, http.MethodGet, g.Admin()+"/modulus/status", nil, &st)
		for _, ps := range st.AtRest["keys"].Passes {
			if ps.Part == "spool" && ps.Passes > 0 && ps.Resealed == plain && ps.Undecryptable == 0 {
				return true
			}
		}
		return false
	})
	g.Stop()
	if plain, sealed := countSealed(t, path, sl, n, bodyOf); plain != 0 || sealed != n {
		t.Fatalf("after the pass: %d plain, %d sealed", plain, sealed)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"ORDER-KILL-", "PAYLOAD-MARKER-kill"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the spool file holds %q after the pass and a compaction", secret)
		}
	}
}

// countSealed opens the spool file (which compacts it when a pass marked
// it), checks that its n events all read back whole with sl, and counts
// how many are sealed and how many plain.
func countSealed(t *testing.T, path string, sl *store.Sealer, n int, bodyOf func(int) []byte) (plain, sealed int) {
	t.Helper()
	s, err := store.OpenBolt(path, store.BoltOptions{AtRest: store.NewAtRest(sl)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.Claim(context.Background(), time.Now().Add(48*time.Hour), time.Minute, 2*n)
	if err != nil || len(evs) != n {
		t.Fatalf("claimed %d of %d events: %v", len(evs), n, err)
	}
	for _, ev := range evs {
		var i int
		if _, err := fmt.Sscanf(ev.ID, "evt_%05d", &i); err != nil || ev.Undecryptable != "" || !bytes.Equal(ev.Body, bodyOf(i)) {
			t.Fatalf("event %s read back as %+v", ev.ID, ev)
		}
		if is, _ := ev.Sealed(); is {
			sealed++
		} else {
			plain++
		}
	}
	return plain, sealed
}
