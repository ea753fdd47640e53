package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// runTraffic starts one gateway with every site of (a), (b) and (c) and
// measures them in alternating rounds.
func runTraffic(o options, dir string, far *farEnd, doOut, doIn bool, rep *report) {
	ports := freePorts(8)
	admin, httpPort, httpsPort, apiMem, apiRedis, plain, webhook, plainTLS := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7]
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	prefix := "qrphbench" + run + ":"
	useRedis := doOut && o.redis != ""
	if useRedis {
		if c, err := net.DialTimeout("tcp", o.redis, time.Second); err != nil {
			log.Printf("no Redis at %s (%v): (b) is skipped", o.redis, err)
			useRedis = false
		} else {
			c.Close()
		}
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `{
	admin 127.0.0.1:%d
	http_port %d
	https_port %d
	skip_install_trust
	auto_https disable_redirects
	log {
		level ERROR
	}
}
`, admin, httpPort, httpsPort)
	// The outbound measurement keeps its answers for 10 seconds instead of
	// the QR validity (15 minutes): with fresh references at thousands of
	// calls a second, 15 minutes of answers would be hundreds of thousands
	// (a sidecar at the provider's limit holds at most 15,000), and their
	// heap would weigh on every later round. The inbound phase's QRs keep
	// the default, so that their results arrive within it.
	policy := ""
	if doOut {
		pf := filepath.Join(dir, "traffic-policy.yaml")
		must(os.WriteFile(pf, []byte("qr:\n  validity: 10s\n"), 0o600))
		policy = "\n\t\tpolicy          " + pf
	}
	api := func(port int, secret, store string) {
		fmt.Fprintf(&cfg, `http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.%s}
		encryption_key  {env.BENCH_ENCRYPTION_KEY}
		activation_code {env.BENCH_ACTIVATION_CODE}
		qr_url          http://%s
		rate_limit      100000000/1m
		max_queue       100000
		store           %s%s
	}
}
`, port, secret, far.provider, store, policy)
	}
	if doOut || doIn { // inbound creates its webhooks' QRs through it
		api(apiMem, "BENCH_SECRET_KEY", "memory")
	}
	if doOut {
		if useRedis {
			api(apiRedis, "BENCH_SECRET_KEY_REDIS", "redis://"+o.redis+"/0?key_prefix="+prefix)
		}
		fmt.Fprintf(&cfg, `http://127.0.0.1:%d {
	reverse_proxy %s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}
}
`, plain, far.provider)
	}
	if doIn {
		fmt.Fprintf(&cfg, `https://127.0.0.1:%d {
	tls internal
	modulus_webhook {
		decryption_key {env.BENCH_ENCRYPTION_KEY}
		allow_ips      127.0.0.1/32
		forward_to     http://%s/deliveries
		sign_secret    {env.BENCH_SIGN}
		spool          %s
		# Counted, never reached: the load is far above the provider's.
		rate_limit        100000000/1m
		rate_limit_per_ip 100000000/1m
	}
}
https://127.0.0.1:%d {
	tls internal
	reverse_proxy %s
}
`, webhook, far.app, filepath.Join(dir, "inbound-spool", "bench.spool"), plainTLS, far.app)
	}
	name := "outbound"
	switch {
	case doOut && doIn:
		name = "mixed"
	case doIn:
		name = "inbound"
	}
	boots := 0
	boot := func() *gateway {
		boots++
		g, _ := startGateway(o, dir, fmt.Sprintf("%s-%d", name, boots), cfg.String(),
			"BENCH_SECRET_KEY=sk_test_FAKEbenchFAKEbenchFAKEbench000000000",
			"BENCH_SECRET_KEY_REDIS=sk_test_FAKEbenchFAKEbenchFAKEbench000000001",
			"BENCH_ENCRYPTION_KEY="+benchKey, "BENCH_ACTIVATION_CODE="+benchActivation, "BENCH_SIGN="+benchSignSecret)
		g.admin = fmt.Sprintf("http://127.0.0.1:%d", admin)
		waitUntil(60*time.Second, "the gateway's admin API", func() bool {
			if g.cmd.ProcessState != nil {
				log.Fatalf("the gateway exited:\n%s", g.log())
			}
			return httpOK(g.admin + "/config/")
		})
		return g
	}
	g := boot()
	defer func() { g.stop() }()
	var rdb *redis.Client
	if useRedis {
		rdb = redis.NewClient(&redis.Options{Addr: o.redis})
		defer func() {
			cleanRedis(rdb, prefix)
			rdb.Close()
		}()
	}

	if doOut {
		refs := func(tag string) func(i int64) []byte {
			return func(i int64) []byte {
				return []byte(`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"` + tag + run + "-" + strconv.FormatInt(i, 10) + `"}`)
			}
		}
		targets := []target{
			{name: "reverse_proxy", addr: fmt.Sprintf("127.0.0.1:%d", plain), path: "/v1/pay/qr"},
			{name: "modulus_api memory", addr: fmt.Sprintf("127.0.0.1:%d", apiMem), path: "/v1/pay/qr"},
		}
		if useRedis {
			targets = append(targets, target{name: "modulus_api redis", addr: fmt.Sprintf("127.0.0.1:%d", apiRedis), path: "/v1/pay/qr"})
		}
		// Each target's round runs in a gateway started for it and warmed
		// up: fresh references at thousands of calls a second pile up
		// answers and ledger entries far beyond what a sidecar holds (the
		// provider allows 1000 calls a minute), and that heap would tax
		// every later round's garbage collection. (The mixed load of the
		// profile keeps one gateway.)
		fresh := !doIn
		log.Printf("outbound: %v warm-up before each measured round", o.warmup)
		for round := 1; round <= o.rounds; round++ {
			for i, t := range targets {
				if fresh || round == 1 {
					if fresh && (round > 1 || i > 0) {
						g.stop()
						g = boot()
					}
					r := load(t, o.conns, o.warmup, 0, refs(fmt.Sprintf("W%d%d", round, i)))
					if r.ok == 0 {
						log.Fatalf("%s answers nothing but %v:\n%s", t.name, r.status, g.log())
					}
				}
				c0, rt0, cmd0 := g.cpu(), redisRoundTrips(g), redisCommands(rdb)
				var prof sync.WaitGroup
				if name, file, ok := strings.Cut(o.profileT, "="); ok && round == 1 && strings.HasSuffix(t.name, name) {
					prof.Add(1)
					go func() {
						defer prof.Done()
						captureProfile(context.Background(), g.admin, file, max(int(o.duration/time.Second)-1, 1))
					}()
				}
				r := load(t, o.conns, o.duration, 0, refs(fmt.Sprintf("R%d%d", round, i)))
				prof.Wait()
				m := measure{res: r, cpu: g.cpu() - c0}
				if i == 2 {
					m.roundTrips = float64(redisRoundTrips(g)-rt0) / float64(max(r.ok, 1))
					m.commands = float64(redisCommands(rdb)-cmd0) / float64(max(r.ok, 1))
				}
				m.hwm = procKB(g.cmd.Process.Pid, "VmHWM")
				rep.out[t.name] = append(rep.out[t.name], m)
				log.Printf("round %d %-20s %8.0f req/s  p99 %-10v failed %d %v", round, t.name, r.rps(), r.p(99).Round(10*time.Microsecond), r.failed, nonOK(r))
			}
		}
		rep.outNames = targetNames(targets)
	}

	if doIn {
		root := filepath.Join(g.dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
		waitUntil(60*time.Second, "Caddy's local root certificate", func() bool { _, err := os.Stat(root); return err == nil })
		pem, err := os.ReadFile(root)
		must(err)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(256)}
		wh := target{name: "modulus_webhook", addr: fmt.Sprintf("127.0.0.1:%d", webhook), tls: tc, path: "/webhooks/modulus"}
		px := target{name: "reverse_proxy TLS", addr: fmt.Sprintf("127.0.0.1:%d", plainTLS), tls: tc, path: "/webhooks/modulus"}
		per := o.webhooks
		total := o.rounds*len(o.senders)*per + 1000
		// Every webhook is the payment of a QR the gateway created: the
		// ledger matches it (a result for an unknown reference would be
		// flagged and logged as an error, which production rarely sees).
		log.Printf("inbound: creating %d QRs, sealing their %d webhooks", total, total)
		qrs := load(target{name: "modulus_api memory", addr: fmt.Sprintf("127.0.0.1:%d", apiMem), path: "/v1/pay/qr"}, o.conns, 0, int64(total), func(i int64) []byte {
			return []byte(`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"B` + run + "-" + strconv.FormatInt(i, 10) + `"}`)
		})
		if qrs.ok != total {
			log.Fatalf("creating the QRs: %d of %d, %v:\n%s", qrs.ok, total, qrs.status, g.log())
		}
		bodies := sealWebhooks("B"+run, total)
		var used atomic.Int64
		take := func(n int) [][]byte {
			s := int(used.Add(int64(n)))
			return bodies[s-n : s]
		}
		acked := 0
		warm := take(1000)
		r := load(wh, 32, 0, int64(len(warm)), func(i int64) []byte { return warm[i] })
		if r.ok == 0 {
			log.Fatalf("modulus_webhook answers nothing but %v:\n%s", r.status, g.log())
		}
		acked += r.ok
		load(px, 32, 0, int64(len(warm)), func(i int64) []byte { return warm[i] })
		waitDelivered(far, acked)
		for round := 1; round <= o.rounds; round++ {
			for _, s := range o.senders {
				set := take(per)
				body := func(i int64) []byte { return set[i] }
				c0 := g.cpu()
				p := load(px, s, 0, int64(per), body)
				pm := measure{res: p, cpu: g.cpu() - c0}
				cm0, w0 := spoolCommits(g)
				c0 = g.cpu()
				var prof sync.WaitGroup
				if name, file, ok := strings.Cut(o.profileT, "="); ok && round == 1 && name == "webhook" && s == o.senders[len(o.senders)-1] {
					prof.Add(1)
					go func() { defer prof.Done(); captureProfile(context.Background(), g.admin, file, 2) }()
				}
				w := load(wh, s, 0, int64(per), body)
				prof.Wait()
				wm := measure{res: w, cpu: g.cpu() - c0}
				cm1, w1 := spoolCommits(g)
				if cm1 > cm0 {
					wm.writesPerFsync = float64(w1-w0) / float64(cm1-cm0)
				}
				acked += w.ok
				t0 := time.Now()
				waitDelivered(far, acked)
				wm.drain = time.Since(t0)
				rep.in[s] = append(rep.in[s], [2]measure{pm, wm})
				log.Printf("round %d %3d senders: reverse_proxy TLS %6.0f req/s p99 %-9v | modulus_webhook %6.0f req/s p99 %-9v %.1f writes/fsync, failed %d %v",
					round, s, p.rps(), p.p(99).Round(10*time.Microsecond), w.rps(), w.p(99).Round(10*time.Microsecond), wm.writesPerFsync, w.failed, nonOK(w))
			}
		}
		d, rep2 := far.delivered()
		rep.acked, rep.delivered, rep.repeated = acked, d, rep2
	}

	if o.pprof != "" && doOut && doIn {
		mixedProfile(o, g, far, apiMem, webhook, run, rep)
	}
	if !doOut || doIn {
		rep.trafficHWM[name] = procKB(g.cmd.Process.Pid, "VmHWM")
	}
}

// mixedProfile runs outbound and inbound load at once and takes the
// gateway's CPU profile meanwhile: the profile behind default.pgo.
func mixedProfile(o options, g *gateway, far *farEnd, apiMem, webhook int, run string, rep *report) {
	secs := int(2 * o.duration / time.Second)
	log.Printf("mixed load for the CPU profile: %ds", secs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); captureProfile(ctx, g.admin, o.pprof, secs) }()
	api := target{addr: fmt.Sprintf("127.0.0.1:%d", apiMem), path: "/v1/pay/qr"}
	d := time.Duration(secs)*time.Second + time.Second
	wg.Add(1)
	go func() {
		defer wg.Done()
		load(api, o.conns/2, d, 0, func(i int64) []byte {
			return []byte(`{"amount":"123.45","currency":"PHP","merchantReferenceNumber":"P` + run + "-" + strconv.FormatInt(i, 10) + `"}`)
		})
	}()
	root := filepath.Join(g.dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	pem, _ := os.ReadFile(root)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	wh := target{addr: fmt.Sprintf("127.0.0.1:%d", webhook), tls: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, path: "/webhooks/modulus"}
	bodies := sealWebhooks("P"+run, 4000*secs)
	load(wh, 16, d, int64(len(bodies)), func(i int64) []byte { return bodies[i] })
	wg.Wait()
	rep.profile = o.pprof
}

func waitDelivered(far *farEnd, acked int) {
	waitUntil(3*time.Minute, "the app to receive every acknowledged webhook", func() bool {
		d, _ := far.delivered()
		return d >= acked
	})
}

// redisRoundTrips is the sum of round_trips over the stores in /modulus/status.
func redisRoundTrips(g *gateway) uint64 {
	var n uint64
	for _, raw := range g.status()["stores"] {
		var s struct {
			RoundTrips uint64 `json:"round_trips"`
		}
		_ = json.Unmarshal(raw, &s)
		n += s.RoundTrips
	}
	return n
}

// redisCommands is the server's total_commands_processed.
func redisCommands(c *redis.Client) uint64 {
	if c == nil {
		return 0
	}
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// spoolCommits reads the file spool's commit and write counters.
func spoolCommits(g *gateway) (commits, writes uint64) {
	for _, raw := range g.status()["inbound"] {
		var s struct {
			Commits uint64 `json:"spool_commits"`
			Writes  uint64 `json:"spool_writes"`
		}
		_ = json.Unmarshal(raw, &s)
		commits += s.Commits
		writes += s.Writes
	}
	return commits, writes
}

func cleanRedis(c *redis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}

func targetNames(ts []target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.name)
	}
	return out
}

func nonOK(r result) string {
	if len(r.status) == 0 {
		return ""
	}
	return fmt.Sprint(r.status)
}
