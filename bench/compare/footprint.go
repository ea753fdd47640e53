package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// runFootprint measures (d): idle RSS and start-up to ready of a
// production-like config (modulus_api, modulus_webhook on a TLS site with
// its file spool, modulus_health and metrics on an operator listener)
// against plain Caddy (one reverse_proxy site), each started three times,
// alternately; then the RSS with o.queue calls waiting for rate slots.
func runFootprint(o options, dir string, far *farEnd, rep *report) {
	env := []string{"BENCH_SECRET_KEY=sk_test_FAKEbenchFAKEbenchFAKEbench000000000", "BENCH_ENCRYPTION_KEY=" + benchKey,
		"BENCH_ACTIVATION_CODE=" + benchActivation, "BENCH_SIGN=" + benchSignSecret}
	var prodRSS, plainRSS []int64
	var prodReady, plainReady []time.Duration
	for i := 0; i < 3; i++ {
		p := freePorts(4)
		cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
}
http://127.0.0.1:%d {
	reverse_proxy %s {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}
}
`, p[0], p[1], far.provider)
		g, t0 := startGateway(o, dir, fmt.Sprintf("plain-%d", i), cfg)
		g.admin = fmt.Sprintf("http://127.0.0.1:%d", p[0])
		waitUntil(30*time.Second, "plain Caddy", func() bool { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/ping", p[1])) })
		plainReady = append(plainReady, time.Since(t0))
		plainRSS = append(plainRSS, settledRSS(g))
		g.stop()

		p = freePorts(6)
		spool := filepath.Join(dir, fmt.Sprintf("prod-%d", i), "data", "webhooks.spool")
		cfg = fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	https_port %d
	skip_install_trust
	auto_https disable_redirects
	servers {
		timeouts {
			read_header 10s
			idle 2m
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	modulus_api {
		environment     sandbox
		secret_key      {env.BENCH_SECRET_KEY}
		encryption_key  {env.BENCH_ENCRYPTION_KEY}
		key_encoding    utf8
		activation_code {env.BENCH_ACTIVATION_CODE}
		qr_url          http://%s
		max_wait        10s
		timeout         15s
		retries         2
		circuit_breaker failures 5 window 30s open 30s probes 1
		store           memory
	}
}
https://127.0.0.1:%d {
	tls internal
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.BENCH_ENCRYPTION_KEY}
			allow_ips      127.0.0.1/32
			forward_to     http://%s/deliveries
			sign_secret    {env.BENCH_SIGN}
			spool          %s
			dedupe_window  72h
			redeliver_for  72h
			max_body       64KiB
		}
	}
}
http://127.0.0.1:%d {
	handle /readyz {
		modulus_health
	}
	handle /metrics {
		metrics
	}
}
`, p[0], p[1], p[2], p[3], far.provider, p[4], far.app, spool, p[5])
		g, t0 = startGateway(o, dir, fmt.Sprintf("prod-%d", i), cfg, env...)
		g.admin = fmt.Sprintf("http://127.0.0.1:%d", p[0])
		waitUntil(30*time.Second, "the production-like config's /readyz", func() bool {
			if g.cmd.ProcessState != nil {
				log.Fatalf("the gateway exited:\n%s", g.log())
			}
			return httpOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", p[5]))
		})
		prodReady = append(prodReady, time.Since(t0))
		prodRSS = append(prodRSS, settledRSS(g))
		g.stop()
	}
	rep.idle = [2]int64{median(prodRSS), median(plainRSS)}
	rep.ready = [2]time.Duration{medianD(prodReady), medianD(plainReady)}
	if o.queue > 0 {
		rep.queued, rep.queueRSS, rep.queueIdleRSS = queueRSS(o, dir, far, env)
	}
}

// settledRSS is the RSS two seconds after ready, once the start-up garbage
// is collected (a sidecar spends most of its life like this).
func settledRSS(g *gateway) int64 {
	time.Sleep(2 * time.Second)
	return g.rssKB()
}

// queueRSS starts modulus_api with a budget of one call per 15s, takes the
// slot, then holds o.queue calls waiting for the next one (max_wait 30s),
// and reads the RSS once they are all queued.
func queueRSS(o options, dir string, far *farEnd, env []string) (queued int, rss, idle int64) {
	p := freePorts(2)
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
}
http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.BENCH_SECRET_KEY}
		encryption_key  {env.BENCH_ENCRYPTION_KEY}
		activation_code {env.BENCH_ACTIVATION_CODE}
		qr_url          http://%s
		rate_limit      1/15s
		max_wait        40s
		max_queue       %d
	}
}
`, p[0], p[1], far.provider, o.queue+100)
	g, _ := startGateway(o, dir, "queue", cfg, env...)
	defer g.stop()
	g.admin = fmt.Sprintf("http://127.0.0.1:%d", p[0])
	addr := fmt.Sprintf("127.0.0.1:%d", p[1])
	waitUntil(30*time.Second, "the queue test's gateway", func() bool { return httpOK(g.admin + "/config/") })
	body := func(ref string) string {
		b := `{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"` + ref + `"}`
		return fmt.Sprintf("POST /v1/pay/qr HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(b), b)
	}
	// The one slot of the window.
	first := load(target{addr: addr, path: "/v1/pay/qr"}, 1, 0, 1, func(int64) []byte {
		return []byte(`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"QFIRST"}`)
	})
	if first.ok != 1 {
		log.Fatalf("queue test: the first call failed (%v):\n%s", first.status, g.log())
	}
	idle = settledRSS(g)
	log.Printf("footprint: queueing %d calls", o.queue)
	conns := make([]net.Conn, 0, o.queue)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := 0; i < o.queue; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(body(fmt.Sprintf("Q%d", i)))); err != nil {
				c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if queued = pacerQueued(g); queued >= o.queue {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	return pacerQueued(g), g.rssKB(), idle
}

func pacerQueued(g *gateway) int {
	n := 0
	for _, raw := range g.status()["outbound"] {
		var s struct {
			Limiter struct {
				Queued int `json:"queued"`
			} `json:"limiter"`
		}
		_ = json.Unmarshal(raw, &s)
		n += s.Limiter.Queued
	}
	return n
}

func median(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianD(v []time.Duration) time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
