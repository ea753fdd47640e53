package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
)

// Replicas: real qrphgate processes sharing one Redis, each test on a
// private deployment (never the shared server on 6379: these tests stop
// and restart it), once per way Redis is deployed: one server, a Redis
// Cluster and a Sentinel set (replicaBackends).

const replicaRateLimit = 20

// replicaOptions describe one replica.
type replicaOptions struct {
	redisURL       string
	providerURL    string
	sharedApp      int // forward_to port of the route on the Redis spool
	localApp       int // forward_to port of the route on a file spool + Redis store
	forwardTimeout string
	dir            string
	minReplicas    int // min_replicas of the route on the Redis spool
}

// replica is one running gateway and its listeners.
type replica struct {
	g                      *e2e.Gateway
	opts                   replicaOptions
	admin, api, hook, mets int
}

func replicaCaddyfile(r *replica) string {
	o := r.opts
	timeout := o.forwardTimeout
	if timeout == "" {
		timeout = "5s"
	}
	minReplicas := ""
	if o.minReplicas > 0 {
		minReplicas = fmt.Sprintf("min_replicas    %d\n\t\t\tmin_replicas_timeout 2s", o.minReplicas)
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
}
http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.QG_REPLICA_SECRET}
		encryption_key  {env.QG_REPLICA_ENC}
		activation_code {env.QG_REPLICA_ACT}
		qr_url          %s
		webhooks_url    %s
		rate_limit      %d/1m
		max_wait        1s
		store           %s
	}
}
http://127.0.0.1:%d {
	route /webhooks/shared {
		modulus_webhook {
			decryption_key  {env.QRPHGATE_E2E_KEY_1}
			allow_ips       127.0.0.1/32
			forward_to      http://127.0.0.1:%d/payments
			forward_timeout %s
			sign_secret     {env.QRPHGATE_E2E_SIGN}
			spool           %s
			retry_backoff   100ms 300ms
			%s
		}
	}
	route /webhooks/local {
		modulus_webhook {
			decryption_key  {env.QRPHGATE_E2E_KEY_1}
			allow_ips       127.0.0.1/32
			forward_to      http://127.0.0.1:%d/payments
			sign_secret     {env.QRPHGATE_E2E_SIGN}
			spool           spool/local.spool
			store           %s
			retry_backoff   100ms 300ms
		}
	}
}
http://127.0.0.1:%d {
	modulus_metrics
}
`, r.admin, r.api, o.providerURL, o.providerURL, replicaRateLimit, o.redisURL,
		r.hook, o.sharedApp, timeout, o.redisURL, minReplicas, o.localApp, o.redisURL, r.mets)
}

func startReplica(t *testing.T, o replicaOptions) *replica {
	t.Helper()
	r := &replica{opts: o, admin: e2e.FreePort(t), api: e2e.FreePort(t), hook: e2e.FreePort(t), mets: e2e.FreePort(t)}
	env := append(gatewayEnv(), "QG_REPLICA_SECRET="+fakeSandboxKey, "QG_REPLICA_ENC="+fakeEncryptionKey, "QG_REPLICA_ACT="+fakeActivation)
	r.g = e2e.Start(t, e2e.Options{Caddyfile: replicaCaddyfile(r), AdminAddr: fmt.Sprintf("127.0.0.1:%d", r.admin), Env: env, Dir: o.dir})
	return r
}

// create asks the replica for a QR; it returns the status, the
// Idempotent-Replayed header and the body.
func (r *replica) create(t *testing.T, ref string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/pay/qr", r.api), "application/json",
		strings.NewReader(`{"amount":"100.00","currency":"PHP","merchantReferenceNumber":"`+ref+`"}`))
	if err != nil {
		t.Errorf("create %s: %v", ref, err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(proxy.HeaderIdempotentReplayed), string(b)
}

func (r *replica) webhook(t *testing.T, route, body string) e2eAnswer {
	t.Helper()
	return postWebhook(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/webhooks/%s", r.hook, route), body, nil)
}

func (r *replica) metrics(t *testing.T) string {
	t.Helper()
	return getBody(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", r.mets))
}

func newProvider(t *testing.T) *fakemodulus.Server {
	return fakemodulus.New(t, fakemodulus.Options{SecretKey: fakeSandboxKey, EncryptionKey: []byte(fakeEncryptionKey)})
}

// maxInWindow is the most calls any window of length w holds, over sorted
// call times.
func maxInWindow(times []time.Time, w time.Duration) int {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	most, lo := 0, 0
	for hi := range times {
		for !times[lo].After(times[hi].Add(-w)) {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

func createCallTimes(p *fakemodulus.Server) []time.Time {
	var out []time.Time
	for _, c := range p.CallsTo("/v1/pay/qr") {
		out = append(out, c.Time)
	}
	return out
}

func createCalls(p *fakemodulus.Server, ref string) int {
	n := 0
	for _, c := range p.CallsTo("/v1/pay/qr") {
		if strings.Contains(string(c.Plaintext), `"`+ref+`"`) {
			n++
		}
	}
	return n
}

// TestReplicasBehaveAsOne: two gateway processes on one Redis. An
// idempotent replay works whichever replica answers; a burst split across
// both never puts more than the limit into any 60 s window at the provider
// and uses at least 90% of what the earlier calls left; a webhook one replica stored is a duplicate
// for the other, on the Redis spool and on file spools with a Redis store,
// sent one after the other or at once.
func TestReplicasBehaveAsOne(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	forEachReplicaBackend(t, testReplicasBehaveAsOne)
}

func testReplicasBehaveAsOne(t *testing.T, backend replicaBackend) {
	srv := backend.start(t, false)
	provider := newProvider(t)
	app := newRecordingApp(t)
	appPort := e2e.FreePort(t)
	serveApp(t, appPort, app)
	o := replicaOptions{redisURL: srv.URL(), providerURL: provider.URL, sharedApp: appPort, localApp: appPort}
	a, b := startReplica(t, o), startReplica(t, o)

	t.Run("idempotent replay on the other replica", func(t *testing.T) {
		code, replayed, first := a.create(t, "REPL-1")
		if code != 200 || replayed != "" {
			t.Fatalf("create on A: %d %q %s", code, replayed, first)
		}
		code, replayed, again := b.create(t, "REPL-1")
		if code != 200 || replayed != "true" || again != first {
			t.Fatalf("replay on B: %d %q\n%s\nwant\n%s", code, replayed, again, first)
		}
		// Concurrent duplicates on both replicas: one upstream call.
		var wg sync.WaitGroup
		codes := make([]int, 6)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _, _ = []*replica{a, b}[i%2].create(t, "REPL-2")
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != 200 {
				t.Fatalf("concurrent duplicate %d: %d", i, c)
			}
		}
		if n1, n2 := createCalls(provider, "REPL-1"), createCalls(provider, "REPL-2"); n1 != 1 || n2 != 1 {
			t.Fatalf("provider calls: REPL-1 %d, REPL-2 %d; want 1 each", n1, n2)
		}
	})

	t.Run("a burst split across both stays within the shared limit", func(t *testing.T) {
		const burst = 60
		// The replay check above made its calls a moment ago, in the same
		// 60 s window: the burst may use only what they left.
		earlier := len(createCallTimes(provider))
		budget := replicaRateLimit - earlier
		if budget <= 0 {
			t.Fatalf("%d provider calls before the burst leave no budget (limit %d)", earlier, replicaRateLimit)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for i := 0; i < burst; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, body := []*replica{a, b}[i%2].create(t, fmt.Sprintf("BURST-%03d", i))
				mu.Lock()
				statuses[code]++
				mu.Unlock()
				if code != 200 && code != 429 {
					t.Errorf("burst call %d: %d %s", i, code, body)
				}
			}()
		}
		wg.Wait()
		times := createCallTimes(provider)
		burstCalls := len(times) - earlier
		peak := maxInWindow(times, time.Minute)
		t.Logf("answers %v; %d burst calls reached the provider (budget left %d), at most %d calls in any 60 s window (limit %d)",
			statuses, burstCalls, budget, peak, replicaRateLimit)
		if peak > replicaRateLimit {
			t.Fatalf("%d calls reached the provider within 60 s; the shared limit is %d", peak, replicaRateLimit)
		}
		if burstCalls*10 < budget*9 {
			t.Fatalf("the burst used only %d of the %d calls left in the budget", burstCalls, budget)
		}
		if statuses[200] != burstCalls {
			t.Fatalf("%d successful answers for %d burst calls to the provider", statuses[200], burstCalls)
		}
	})

	for _, route := range []string{"shared", "local"} {
		t.Run("webhook de-duplication across replicas, "+route+" spool", func(t *testing.T) {
			ref := "ORDER-DUP-" + route
			body := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`)
			if ans := a.webhook(t, route, body); ans.status != 200 || ans.body != "{\"received\":true}\n" {
				t.Fatalf("A: %d %s", ans.status, ans.body)
			}
			// The provider's retry lands on the other replica.
			if ans := b.webhook(t, route, body); ans.status != 200 || !strings.Contains(ans.body, `"duplicate":true`) {
				t.Fatalf("B: %d %s", ans.status, ans.body)
			}
			// A replay under another activation-code header, on either
			// replica, is the same event (the header is not part of the key).
			for _, r := range []*replica{a, b} {
				url := fmt.Sprintf("http://127.0.0.1:%d/webhooks/%s", r.hook, route)
				if ans := postWebhook(t, http.DefaultClient, url, body, map[string]string{"activation-code": "EVIL-0000-0000-0001"}); ans.status != 200 || !strings.Contains(ans.body, `"duplicate":true`) {
					t.Fatalf("replay under another header: %d %s", ans.status, ans.body)
				}
			}
			e2e.WaitFor(t, 15*time.Second, "the delivery of "+ref, func() bool { return app.count(ref) >= 1 })

			// Copies at the same instant: each is accepted, a duplicate, or
			// told to retry (503 in_progress) while the other is stored;
			// the retry is then a duplicate.
			refs := make([]string, 8)
			var wg sync.WaitGroup
			for i := range refs {
				refs[i] = fmt.Sprintf("ORDER-RACE-%s-%d", route, i)
				copyBody := sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+refs[i]+`"}`)
				for _, r := range []*replica{a, b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ans := r.webhook(t, route, copyBody)
						switch {
						case ans.status == 200:
						case ans.status == 503 && strings.Contains(ans.body, inbound.ResultInProgress):
							time.Sleep(200 * time.Millisecond)
							if again := r.webhook(t, route, copyBody); again.status != 200 || !strings.Contains(again.body, "duplicate") {
								t.Errorf("retry after in_progress: %d %s", again.status, again.body)
							}
						default:
							t.Errorf("copy of %s: %d %s", refs[i], ans.status, ans.body)
						}
					}()
				}
			}
			wg.Wait()
			for _, ref := range refs {
				e2e.WaitFor(t, 15*time.Second, "the delivery of "+ref, func() bool { return app.count(ref) >= 1 })
			}
			time.Sleep(500 * time.Millisecond) // room for a second delivery to show
			for _, ref := range append(refs, ref) {
				if n := app.count(ref); n != 1 {
					t.Errorf("%s delivered %d times, want once", ref, n)
				}
			}
		})
	}
}

// hangingApp accepts deliveries and never answers (until the test ends).
type hangingApp struct {
	mu   sync.Mutex
	seen map[string]int
	quit chan struct{}
}

func (h *hangingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Ref string `json:"referenceNumber"`
	}
	_ = json.NewDecoder(r.Body).Decode(&p)
	h.mu.Lock()
	h.seen[p.Ref]++
	h.mu.Unlock()
	select {
	case <-h.quit:
	case <-r.Context().Done():
	}
}

func (h *hangingApp) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// TestReplicasSpoolFailover: replica A acknowledges webhooks on the Redis
// spool and is in the middle of delivering them (its app hangs) when it is
// SIGKILLed. Replica B, whose app works, delivers every one of them: A's
// heartbeat stops, and B takes A's claims over long before the lease A
// asked for (forward_timeout + 1 min) would end.
func TestReplicasSpoolFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	forEachReplicaBackend(t, testReplicasSpoolFailover)
}

func testReplicasSpoolFailover(t *testing.T, backend replicaBackend) {
	srv := backend.start(t, true)
	provider := newProvider(t)
	hang := &hangingApp{seen: map[string]int{}, quit: make(chan struct{})}
	hangPort := e2e.FreePort(t)
	serveApp(t, hangPort, hang)
	t.Cleanup(func() { close(hang.quit) })
	app := newRecordingApp(t)
	appPort := e2e.FreePort(t)
	serveApp(t, appPort, app)

	a := startReplica(t, replicaOptions{redisURL: srv.URL(), providerURL: provider.URL, sharedApp: hangPort, localApp: hangPort, forwardTimeout: "60s"})
	const n = 10
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("ORDER-FAILOVER-%02d", i)
		if ans := a.webhook(t, "shared", sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+refs[i]+`"}`)); ans.status != 200 {
			t.Fatalf("A acknowledged %s with %d %s", refs[i], ans.status, ans.body)
		}
	}
	e2e.WaitFor(t, 15*time.Second, "A to be delivering every event", func() bool { return hang.count() == n })

	b := startReplica(t, replicaOptions{redisURL: srv.URL(), providerURL: provider.URL, sharedApp: appPort, localApp: appPort})
	time.Sleep(2 * time.Second) // B polls the spool every second: A's leases hide the events
	for _, ref := range refs {
		if app.count(ref) != 0 {
			t.Fatalf("B delivered %s while A still held it", ref)
		}
	}
	killed := time.Now()
	a.g.Kill()
	for _, ref := range refs {
		e2e.WaitFor(t, 45*time.Second, "B to deliver "+ref, func() bool { return app.count(ref) == 1 })
	}
	t.Logf("B delivered A's %d events %v after A was killed", n, time.Since(killed).Round(100*time.Millisecond))
	// B logs the take-over before it delivers, but its log reaches the
	// test through a pipe that may lag behind the deliveries.
	e2e.WaitFor(t, 10*time.Second, "B to log the take-over", func() bool {
		return b.g.Contains("took over the events another replica had claimed")
	})
}

// TestReplicasRedisOutage stops the shared Redis mid-run and restarts it,
// and checks the documented failure mode on two replicas:
//   - outbound calls get 503 store_unavailable and none reaches the
//     provider (no rate slot, no call), replays included;
//   - a webhook for the Redis spool is not acknowledged (503): the
//     provider retries; one for a file spool with a Redis store is
//     accepted and delivered (de-duplication falls back to the replica's
//     own set);
//   - the outage and the recovery are logged once per process (per
//     transition: a Cluster coming back node by node may flap) and show in
//     qrphgate_store_up and qrphgate_store_transitions_total;
//   - after the restart everything works again, and every acknowledged
//     event is delivered, including those that were pending in the Redis
//     spool across the restart (append-only file).
func TestReplicasRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	forEachReplicaBackend(t, testReplicasRedisOutage)
}

func testReplicasRedisOutage(t *testing.T, backend replicaBackend) {
	srv := backend.start(t, true)
	provider := newProvider(t)
	app := newRecordingApp(t)
	appPort := e2e.FreePort(t)
	serveApp(t, appPort, app)
	app.setStatus(503) // the app is down too: acknowledged events wait in the spool
	o := replicaOptions{redisURL: srv.URL(), providerURL: provider.URL, sharedApp: appPort, localApp: appPort}
	a, b := startReplica(t, o), startReplica(t, o)
	event := func(ref string) string {
		return sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`"}`)
	}

	if code, _, body := a.create(t, "OUT-1"); code != 200 {
		t.Fatalf("create before the outage: %d %s", code, body)
	}
	if ans := a.webhook(t, "shared", event("ORDER-BEFORE")); ans.status != 200 {
		t.Fatalf("webhook before the outage: %d %s", ans.status, ans.body)
	}

	srv.Stop()
	calls := len(provider.Calls())
	for _, tc := range []struct {
		r   *replica
		ref string
	}{{b, "OUT-2"}, {a, "OUT-3"}, {b, "OUT-1"}} { // OUT-1: a replay
		code, _, body := tc.r.create(t, tc.ref)
		if code != 503 || !strings.Contains(body, `"store_unavailable"`) {
			t.Fatalf("create %s with Redis down: %d %s", tc.ref, code, body)
		}
	}
	if n := len(provider.Calls()); n != calls {
		t.Fatalf("%d calls reached the provider with Redis down", n-calls)
	}
	for _, r := range []*replica{a, b} {
		if ans := r.webhook(t, "shared", event("ORDER-DURING")); ans.status != 503 {
			t.Fatalf("Redis spool down: %d %s, want 503 (not acknowledged)", ans.status, ans.body)
		}
	}
	if ans := b.webhook(t, "local", event("ORDER-LOCAL")); ans.status != 200 || ans.body != "{\"received\":true}\n" {
		t.Fatalf("file spool with the Redis store down: %d %s, want accepted", ans.status, ans.body)
	}
	// One outage, so one transition each way. A Cluster whose nodes stop
	// (and later come back) one by one answers for some slots after others
	// are gone: a replica may see it refuse (CLUSTERDOWN), answer, then
	// refuse again; each transition is still logged and counted once,
	// never per request.
	maxFlaps := 1
	if backend.name == "cluster" {
		// Each of the three primaries (and their replicas) stops and comes
		// back on its own: a few transitions each way, still far from one
		// per request (dozens are made during the outage).
		maxFlaps = 6
	}
	for _, r := range []*replica{a, b} {
		m := r.metrics(t)
		down, up := seriesValue(m, `qrphgate_store_transitions_total{store="redis-`, `to="down"}`), seriesValue(m, `qrphgate_store_transitions_total{store="redis-`, `to="up"}`)
		if !containsLine(m, `qrphgate_store_up{store="redis-`, "} 0") || down < 1 || down > maxFlaps || up != down-1 {
			t.Fatalf("metrics during the outage:\n%s", grepLines(m, "qrphgate_store"))
		}
	}

	srv.Restart(t)
	for _, r := range []*replica{a, b} {
		e2e.WaitFor(t, 20*time.Second, "the store to be up again", func() bool { return containsLine(r.metrics(t), "qrphgate_store_up", "} 1") })
	}
	if code, _, body := b.create(t, "OUT-2"); code != 200 {
		t.Fatalf("create after the restart: %d %s", code, body)
	}
	if code, replayed, _ := b.create(t, "OUT-1"); code != 200 || replayed != "true" {
		t.Fatalf("replay after the restart: %d %q", code, replayed)
	}
	// The provider's retry of the webhook that got 503.
	if ans := b.webhook(t, "shared", event("ORDER-DURING")); ans.status != 200 || strings.Contains(ans.body, "duplicate") {
		t.Fatalf("retry after the restart: %d %s", ans.status, ans.body)
	}
	app.setStatus(200)
	for _, ref := range []string{"ORDER-BEFORE", "ORDER-DURING", "ORDER-LOCAL"} {
		e2e.WaitFor(t, 30*time.Second, "delivery of "+ref, func() bool { return app.count(ref) >= 1 })
	}
	for _, r := range []*replica{a, b} {
		logs := r.g.Logs()
		down, up := strings.Count(logs, "store unreachable"), strings.Count(logs, "store reachable again")
		if down != up || down < 1 || down > maxFlaps {
			t.Errorf("a replica logged the outage %d times and the recovery %d times; want once each (at most %d on a cluster)", down, up, maxFlaps)
		}
		if !containsLine(r.metrics(t), "qrphgate_store_transitions_total", fmt.Sprintf(`to="up"} %d`, up)) {
			t.Errorf("metrics after the restart (%d recoveries logged):\n%s", up, grepLines(r.metrics(t), "qrphgate_store"))
		}
	}
}

// seriesValue is the value of the first series in text whose line starts
// with prefix and whose labels end with labelsSuffix (-1 when none).
func seriesValue(text, prefix, labelsSuffix string) int {
	for _, l := range strings.Split(text, "\n") {
		series, value, ok := strings.Cut(l, " ")
		if ok && strings.HasPrefix(series, prefix) && strings.HasSuffix(series, labelsSuffix) {
			n, err := strconv.Atoi(value)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func containsLine(text, prefix, suffix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
