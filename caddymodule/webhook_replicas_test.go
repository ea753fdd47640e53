package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/proxy/inbound"
)

// min_replicas on a Redis spool whose primary has no replica: the
// webhook is refused with 503 spool_unavailable after min_replicas_timeout
// (the provider retries), nothing is left in the spool, and the retry is
// not taken for a duplicate. A replica that is stalled (SIGSTOP) refuses
// the same way, and the provider's retry is acknowledged once it runs
// again. With a replica in sync (a Sentinel set) the same handler
// acknowledges.
func TestWebhookMinReplicas(t *testing.T) {
	app := newTestApp(t)
	body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-MINREPL-1"}`)
	type answer struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	post := func(h *Webhook) (int, answer) {
		t.Helper()
		rec := serve(t, h, caddyRequest(body, "203.0.113.7", false, nil))
		var b answer
		_ = json.Unmarshal(rec.Body.Bytes(), &b)
		return rec.Code, b
	}

	t.Run("no replica: refused within the bound", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		h := testWebhook(t, app.srv.URL)
		h.Spool, h.MinReplicas, h.MinReplicasTimeout = srv.URL(), 1, caddy.Duration(300*time.Millisecond)
		provision(t, h, newCaddyContext(t))
		for attempt := 1; attempt <= 2; attempt++ { // the provider's retry is refused too, not a duplicate
			start := time.Now()
			code, b := post(h)
			if code != http.StatusServiceUnavailable || b.Error.Code != inbound.ResultSpoolUnavailable {
				t.Fatalf("attempt %d: %d %+v, want 503 %s", attempt, code, b, inbound.ResultSpoolUnavailable)
			}
			if took := time.Since(start); took < 300*time.Millisecond || took > 10*time.Second {
				t.Fatalf("attempt %d answered after %v; the bound is 300ms", attempt, took)
			}
		}
		st, err := h.worker.spool.Stats(context.Background())
		if err != nil || st.Pending != 0 {
			t.Fatalf("spool after the refusals: %+v %v, want empty", st, err)
		}
	})

	t.Run("a stalled replica: refused, then acknowledged once it runs", func(t *testing.T) {
		app := newTestApp(t)
		primary := redistest.Start(t, redistest.Options{})
		replica := redistest.StartReplica(t, primary, redistest.Options{})
		h := testWebhook(t, app.srv.URL)
		h.Spool, h.MinReplicas, h.MinReplicasTimeout = primary.URL(), 1, caddy.Duration(300*time.Millisecond)
		provision(t, h, newCaddyContext(t))
		replica.Pause()
		if code, b := post(h); code != http.StatusServiceUnavailable || b.Error.Code != inbound.ResultSpoolUnavailable {
			t.Fatalf("with the replica stalled: %d %+v, want 503 %s", code, b, inbound.ResultSpoolUnavailable)
		}
		// Refused means not kept: nothing is pending, so nothing can be
		// delivered on the strength of the refused attempt.
		if st, err := h.worker.spool.Stats(context.Background()); err != nil || st.Pending != 0 || app.deliveries() != 0 {
			t.Fatalf("after the refusal: spool %+v %v, %d deliveries; want nothing", st, err, app.deliveries())
		}
		replica.Resume()
		if code, b := post(h); code != http.StatusOK { // the provider's retry
			t.Fatalf("the retry with the replica running: %d %+v, want 200", code, b)
		}
		waitForDeliveries(t, app, 1)
	})

	t.Run("a replica in sync: acknowledged", func(t *testing.T) {
		set := redistest.StartSentinel(t, redistest.SentinelOptions{})
		h := testWebhook(t, app.srv.URL)
		h.Spool, h.MinReplicas = set.URL(), 1
		provision(t, h, newCaddyContext(t))
		if code, b := post(h); code != http.StatusOK {
			t.Fatalf("%d %+v, want 200", code, b)
		}
		waitForDeliveries(t, app, 1)
		if code, _ := post(h); code != http.StatusOK {
			t.Fatalf("the copy: %d, want 200 (a duplicate)", code)
		}
		if n := app.deliveries(); n != 1 {
			t.Fatalf("%d deliveries, want 1", n)
		}
	})
}

func waitForDeliveries(t *testing.T, app *testApp, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for app.deliveries() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries after 15s, want %d", app.deliveries(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
