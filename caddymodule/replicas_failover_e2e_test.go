package caddymodule

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/proxy/inbound"
)

// spoolKey is a key of the gateways' Redis spool ("webhooks" under the
// default prefix) as a Cluster names it: its slot is the spool's.
const spoolKey = "qrphgate:{webhooks}:due"

// TestReplicasFollowAFailover: two gateways on a deployment that fails
// over (Sentinel; a Cluster), its primary with two replicas (so that one
// is left for min_replicas 1 after a failover), min_replicas 1 on the
// Redis spool, no restart of either gateway throughout.
//
//  1. A batch of webhooks is acknowledged while the app is down, so they
//     wait in the spool; the primary is killed right after the last 200.
//     After the promotion every acknowledged event is delivered.
//  2. The killed server rejoins as a replica. Under load (webhooks and
//     outbound calls on both gateways) the primary is killed again: while
//     the failover runs, answers are 503 (the provider retries; the app
//     retries), never an error of another kind (a webhook whose storage
//     the failover interrupted is answered 503 in_progress until its
//     reservation lapses); then both gateways
//     acknowledge webhooks and answer outbound calls again (200, or 429
//     once the shared rate budget is spent: the store answered), and
//     every webhook they acknowledged is delivered.
func TestReplicasFollowAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) redistest.Failover
	}{
		{"sentinel", func(t *testing.T) redistest.Failover {
			return redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 2, DownAfter: time.Second, AppendOnly: true}).Failover()
		}},
		{"cluster", func(t *testing.T) redistest.Failover {
			return redistest.StartCluster(t, redistest.ClusterOptions{ReplicasPerPrimary: 2, NodeTimeout: 2 * time.Second, AppendOnly: true}).Failover()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testReplicasFollowAFailover(t, tc.start(t)) })
	}
}

func testReplicasFollowAFailover(t *testing.T, rd redistest.Failover) {
	provider := newProvider(t)
	app := newRecordingApp(t)
	appPort := e2e.FreePort(t)
	serveApp(t, appPort, app)
	o := replicaOptions{redisURL: rd.URL(), providerURL: provider.URL, sharedApp: appPort, localApp: appPort, minReplicas: 1}
	a, b := startReplica(t, o), startReplica(t, o)
	gateways := []*replica{a, b}
	event := func(ref string) string {
		return sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`)
	}

	// 1. A batch acknowledged, then the primary killed at once.
	app.setStatus(503)
	const batch = 20
	refs := make([]string, batch)
	for i := range refs {
		refs[i] = fmt.Sprintf("ORDER-ACKED-%02d", i)
		if ans := gateways[i%2].webhook(t, "shared", event(refs[i])); ans.status != 200 {
			t.Fatalf("%s: %d %s, want 200 (the replica is in sync)", refs[i], ans.status, ans.body)
		}
	}
	old := rd.KillPrimary(t, spoolKey)
	killed := time.Now()
	rd.WaitPromotion(t, spoolKey, old)
	t.Logf("promoted %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	app.setStatus(200)
	for _, ref := range refs {
		e2e.WaitFor(t, 60*time.Second, "the delivery of acknowledged "+ref, func() bool { return app.count(ref) >= 1 })
	}

	// 2. Again, under load.
	rd.Restart(t)
	var (
		stop      atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		acked     []string
		answers   = map[string]int{}
		unexpect  []string
		hooksOK   [2]atomic.Int64 // webhooks acknowledged per gateway after the promotion
		callsOK   [2]atomic.Int64 // outbound calls the store answered, per gateway, after it
		promotedF atomic.Bool
	)
	t.Cleanup(func() { stop.Store(true); wg.Wait() }) // a failed test stops its load first
	record := func(kind string, status int, body string, gw int) {
		mu.Lock()
		defer mu.Unlock()
		answers[fmt.Sprintf("%s %d", kind, status)]++
		after := promotedF.Load()
		switch {
		case status == 200 && kind == "webhook":
			if after {
				hooksOK[gw].Add(1)
			}
		case (status == 200 || status == 429) && kind == "create": // 429: the shared budget is spent
			if after {
				callsOK[gw].Add(1)
			}
		case status == 503 && (strings.Contains(body, inbound.ResultSpoolUnavailable) || strings.Contains(body, inbound.ResultInProgress) ||
			strings.Contains(body, `"store_unavailable"`)):
		default:
			unexpect = append(unexpect, fmt.Sprintf("%s: %d %s", kind, status, body))
		}
	}
	for gw, g := range gateways {
		wg.Add(2)
		go func() { // the provider's webhooks; one refused is retried by the provider later
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				ref := fmt.Sprintf("ORDER-LOAD-%d-%04d", gw, i)
				ans := g.webhook(t, "shared", event(ref))
				record("webhook", ans.status, ans.body, gw)
				if ans.status == 200 {
					mu.Lock()
					acked = append(acked, ref)
					mu.Unlock()
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		go func() { // the app's outbound calls
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				code, _, body := g.create(t, fmt.Sprintf("LOAD-%d-%04d", gw, i))
				record("create", code, body, gw)
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	e2e.WaitFor(t, 15*time.Second, "load before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 10
	})
	old = rd.KillPrimary(t, spoolKey)
	killed = time.Now()
	rd.WaitPromotion(t, spoolKey, old)
	promotedF.Store(true)
	deadline := time.Now().Add(30 * time.Second)
	for !(hooksOK[0].Load() >= 3 && hooksOK[1].Load() >= 3 && callsOK[0].Load() >= 1 && callsOK[1].Load() >= 1) {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Errorf("answers %v; after the promotion: webhooks acknowledged %d and %d, outbound calls answered %d and %d",
				answers, hooksOK[0].Load(), hooksOK[1].Load(), callsOK[0].Load(), callsOK[1].Load())
			mu.Unlock()
			t.Fatalf("the gateways did not serve again within 30s of the promotion; A's log:\n%s", a.g.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	followed := time.Since(killed)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers %v; both gateways followed the promotion %v after the kill; %d webhooks acknowledged under load",
		answers, followed.Round(100*time.Millisecond), len(acked))
	if len(unexpect) > 0 {
		t.Fatalf("answers other than 200, 429 and 503 while the primary failed over: %v", unexpect)
	}
	for _, ref := range acked {
		e2e.WaitFor(t, 60*time.Second, "the delivery of acknowledged "+ref, func() bool { return app.count(ref) >= 1 })
	}
}
