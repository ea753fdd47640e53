package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/redistest"
)

// TestRedisSpoolFaultsDoNotParkEvents (issue 19.3): a gateway delivers
// from a Redis spool under load while its Redis server is stalled (SIGSTOP
// for 3 s, twice; on one server, and on the Cluster node holding the spool)
// or killed with SIGKILL and restarted (three times). A claim that runs
// on the server but whose answer the gateway never gets takes events that
// the gateway does not know it holds; they must be handed back and follow
// retry_backoff (here at most 1 s), not wait for their lease
// (forward_timeout + 1 minute, here 3 minutes). Every acknowledged event is
// delivered within the bound, and /modulus/status then shows nothing
// pending.
func TestRedisSpoolFaultsDoNotParkEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	stallTwice := func(t *testing.T, srv *redistest.Server) {
		for range 2 {
			srv.Pause()
			time.Sleep(3 * time.Second) // the stall itself, not a wait for state
			srv.Resume()
			time.Sleep(2 * time.Second) // load between the stalls
		}
	}
	for _, tc := range []struct {
		name string
		// start runs the deployment; it returns its URL and the server
		// that holds the spool.
		start func(t *testing.T) (string, *redistest.Server)
		fault func(t *testing.T, srv *redistest.Server)
	}{
		{"stalled twice", startFaultServer, stallTwice},
		{"killed and restarted", startFaultServer, func(t *testing.T, srv *redistest.Server) {
			for range 3 {
				srv.Kill()
				srv.Restart()               // waits until it answers PING
				time.Sleep(2 * time.Second) // load between the kills
			}
		}},
		// A Cluster client retries a command whose answer timed out or
		// whose connection dropped: a claim can run twice, and the reply
		// of the second hides that the first took events too. The node
		// timeout (15 s) is far longer than a stall: no failover.
		{"cluster node stalled twice", func(t *testing.T) (string, *redistest.Server) {
			cl := redistest.StartCluster(t, redistest.ClusterOptions{AppendOnly: true})
			return cl.URL(), cl.Primary(t, spoolKey)
		}, stallTwice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, srv := tc.start(t)
			testRedisSpoolFault(t, url, func(t *testing.T) { tc.fault(t, srv) })
		})
	}
}

func startFaultServer(t *testing.T) (string, *redistest.Server) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	return srv.URL(), srv
}

// The bound on delivery once Redis is back: retry_backoff's maximum (1 s),
// plus the heartbeat that hands a lost claim back (it beats every 5 s: a
// third of the spool's 15 s heartbeat), plus slack for a loaded machine. A
// parked event waits for its 3-minute lease.
const (
	faultRetryMax      = time.Second
	faultDeliveryBound = faultRetryMax + 5*time.Second + 20*time.Second
	faultLease         = 2*time.Minute + time.Minute
)

func testRedisSpoolFault(t *testing.T, redisURL string, fault func(t *testing.T)) {
	p := newGatewayPorts(t)
	app := newRecordingApp(t)
	serveApp(t, p.app, app)
	conf := fmt.Sprintf(`{
	admin %s
	auto_https off
}

http://127.0.0.1:%d {
	modulus_webhook {
		decryption_key  {env.QRPHGATE_E2E_KEY_1}
		allow_ips       127.0.0.1/32
		forward_to      http://127.0.0.1:%d/payments
		forward_timeout 2m
		sign_secret     {env.QRPHGATE_E2E_SIGN}
		spool           %s
		redeliver_for   30m
		retry_backoff   100ms %v
		rate_limit        1000000/1m
		rate_limit_per_ip 1000000/1m
	}
}
`, p.adminAddr(), p.http, p.app, redisURL, faultRetryMax)
	g := e2e.Start(t, e2e.Options{Caddyfile: conf, AdminAddr: p.adminAddr(), Env: gatewayEnv()})
	url := fmt.Sprintf("http://127.0.0.1:%d/webhooks/modulus", p.http)

	var (
		mu      sync.Mutex
		acked   []string
		refused atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				ref := fmt.Sprintf("ORDER-FAULT-%d-%05d", w, i)
				a := postWebhook(t, http.DefaultClient, url, sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`), nil)
				switch {
				case a.status == 200:
					mu.Lock()
					acked = append(acked, ref)
					mu.Unlock()
				case a.status == 503: // Redis stalled or down: the provider retries
					refused.Add(1)
				default:
					t.Errorf("%s: %d %s", ref, a.status, a.body)
				}
			}
		}()
	}
	e2e.WaitFor(t, 30*time.Second, "load before the fault", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	fault(t)
	recovered := time.Now()
	e2e.WaitFor(t, 30*time.Second, "webhooks acknowledged again after the fault", func() bool {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > n
	})
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	refs := append([]string(nil), acked...)
	mu.Unlock()

	// Every acknowledged event, delivered within the bound; the ones that
	// are not are parked, and are timed until their lease lets them go.
	undelivered := func() []string {
		var out []string
		for _, ref := range refs {
			if app.count(ref) == 0 {
				out = append(out, ref)
			}
		}
		return out
	}
	missing := undelivered()
	for len(missing) > 0 && time.Since(recovered) < faultDeliveryBound {
		time.Sleep(100 * time.Millisecond)
		missing = undelivered()
	}
	handedBack := strings.Count(g.Logs(), "handed back events a claim had taken before its answer was lost")
	t.Logf("%d events acknowledged, %d webhooks refused (503) during the fault; %d undelivered %v after Redis was back; %d hand-backs of a lost claim logged",
		len(refs), refused.Load(), len(missing), faultDeliveryBound, handedBack)
	if len(missing) > 0 {
		parked := len(missing)
		st := inboundStatus(t, g)
		for len(missing) > 0 && time.Since(recovered) < faultLease+time.Minute {
			time.Sleep(time.Second)
			missing = undelivered()
		}
		sort.Strings(missing)
		t.Fatalf("%d acknowledged events were parked (status while parked: %+v); the last was delivered %v after Redis was back (the lease is %v); still undelivered: %v",
			parked, st, time.Since(recovered).Round(time.Second), faultLease, missing)
	}
	t.Logf("every acknowledged event delivered %v after Redis was back", time.Since(recovered).Round(100*time.Millisecond))
	e2e.WaitFor(t, 10*time.Second, "/modulus/status to show nothing pending", func() bool {
		st := inboundStatus(t, g)
		return st.Pending == 0 && st.InFlight == 0
	})
}

type faultStatus struct {
	Pending  int    `json:"pending"`
	InFlight int    `json:"in_flight"`
	Error    string `json:"error"`
}

// inboundStatus is the one modulus_webhook's part of /modulus/status.
func inboundStatus(t *testing.T, g *e2e.Gateway) faultStatus {
	t.Helper()
	var st struct {
		Inbound map[string]json.RawMessage `json:"inbound"`
	}
	adminJSON(t, http.MethodGet, g.Admin()+"/modulus/status", nil, &st)
	if len(st.Inbound) != 1 {
		t.Fatalf("/modulus/status has %d inbound sections, want 1", len(st.Inbound))
	}
	var out faultStatus
	for _, raw := range st.Inbound {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
