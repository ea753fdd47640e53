// Command inbound is the load test of modulus_webhook. It builds (or takes)
// the qrphgate binary, runs it with two TLS sites on Caddy's local CA — one
// modulus_webhook, one plain reverse_proxy — in front of the same app
// stand-in, and sends distinct, really encrypted webhooks to each in turn,
// in the same run:
//
//	go run ./bench/inbound -n 20000 -c 64 -rounds 2
//
// It reports requests/s, p50 and p99 acknowledgement latency for both, the
// ratio, the gateway's peak resident memory, the spool's writes per fsync,
// and checks that every acknowledged webhook reached the app (and how many
// reached it twice). Every acknowledgement is durable: the spool fsyncs
// before the 200.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
)

const (
	benchKey    = "TEST-ONLY-fake-key-do-not-use-32"
	benchSecret = "whsec_VEVTVC1PTkxZLWZha2Utc2lnbmluZy1rZXktMzJieSE="
)

func main() {
	var (
		bin       = flag.String("bin", "", "qrphgate binary (default: build ./cmd/qrphgate)")
		n         = flag.Int("n", 20000, "requests per target per round")
		conc      = flag.Int("c", 64, "concurrent clients")
		rounds    = flag.Int("rounds", 2, "rounds; each runs the plain proxy then the webhook gateway")
		keep      = flag.Bool("keep", false, "keep the work directory")
		drainWait = flag.Duration("drain", 2*time.Minute, "how long to wait for every acknowledged event to be delivered")
		profile   = flag.String("cpuprofile", "", "write the gateway's CPU profile of the first webhook phase (5s) to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "qrphgate-bench-")
	must(err)
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		log.Printf("work directory %s", dir)
	}
	if *bin == "" {
		*bin = filepath.Join(dir, "qrphgate")
		log.Printf("building %s", *bin)
		cmd := exec.Command("go", "build", "-o", *bin, "./cmd/qrphgate")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		must(cmd.Run())
	}

	app := newApp()
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go func() { _ = http.Serve(appLn, app) }()

	ports := freePorts(5)
	admin, webhookPort, proxyPort := ports[0], ports[1], ports[2]
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	https_port %d
	skip_install_trust
	auto_https disable_redirects
}
https://127.0.0.1:%d {
	tls internal
	modulus_webhook {
		decryption_key {env.BENCH_KEY}
		allow_ips      127.0.0.1/32
		forward_to     http://%s/deliveries
		sign_secret    {env.BENCH_SIGN}
		spool          %s
		rate_limit        100000000/1m
		rate_limit_per_ip 100000000/1m
	}
}
https://127.0.0.1:%d {
	tls internal
	reverse_proxy %s
}
`, admin, ports[3], ports[4], webhookPort, appLn.Addr(), filepath.Join(dir, "spool", "bench.spool"), proxyPort, appLn.Addr())
	cfgPath := filepath.Join(dir, "Caddyfile")
	must(os.WriteFile(cfgPath, []byte(caddyfile), 0o600))
	logFile, err := os.Create(filepath.Join(dir, "qrphgate.log"))
	must(err)
	cmd := exec.Command(*bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"BENCH_KEY="+benchKey, "BENCH_SIGN="+benchSecret)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The gateway dies with this program, even when it exits through log.Fatal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	must(cmd.Start())
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
	waitUntil(60*time.Second, "the admin API", func() bool {
		resp, err := http.Get(adminURL + "/config/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	client := tlsClient(filepath.Join(dir, "data", "caddy", "pki", "authorities", "local", "root.crt"), *conc)

	total := *rounds * *n
	log.Printf("sealing %d distinct webhooks for each target", total+2*200)
	bodies := sealBodies("BENCH", total+200)
	plainBodies := sealBodies("PLAIN", total+200)

	webhookURL := fmt.Sprintf("https://127.0.0.1:%d/webhooks/modulus", webhookPort)
	proxyURL := fmt.Sprintf("https://127.0.0.1:%d/webhooks/modulus", proxyPort)
	// Warm up: certificates, connections, the spool file.
	warmWebhook := load(client, webhookURL, bodies[total:], *conc)
	load(client, proxyURL, plainBodies[total:], *conc)
	acked := warmWebhook.ok

	mem := &rssSampler{pid: cmd.Process.Pid}
	var results [2][]phase
	for r := 0; r < *rounds; r++ {
		part := func(b []string) []string { return b[r**n : (r+1)**n] }
		mem.start()
		p := load(client, proxyURL, part(plainBodies), *conc)
		p.peakRSS = mem.stop()
		results[0] = append(results[0], p)
		mem.start()
		if r == 0 && *profile != "" {
			go captureProfile(adminURL, *profile)
		}
		w := load(client, webhookURL, part(bodies), *conc)
		w.peakRSS = mem.stop()
		acked += w.ok
		// Deliveries still under way would slow the next phase: drain them,
		// and charge the time to this phase's sustained rate.
		t0 := time.Now()
		waitUntil(*drainWait, "the deliveries of this round", func() bool { return app.distinct() >= acked })
		w.drain = time.Since(t0)
		results[1] = append(results[1], w)
		log.Printf("round %d: reverse_proxy %.0f req/s (p99 %v), modulus_webhook %.0f req/s (p99 %v), delivered %v later",
			r+1, p.rps(), p.p(99), w.rps(), w.p(99), w.drain.Round(time.Millisecond))
	}

	start := time.Now()
	waitUntil(*drainWait, "every acknowledged webhook to be delivered", func() bool { return app.distinct() >= acked })
	drained := time.Since(start)
	status := statusOf(adminURL)
	hwm := readProcKB(cmd.Process.Pid, "VmHWM")

	fmt.Printf("\nqrphgate inbound load test: %d rounds x %d requests per target, %d clients, GOMAXPROCS %d on %d CPUs\n",
		*rounds, *n, *conc, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("%-16s %10s %10s %10s %10s %12s %16s\n", "target", "req/s", "p50", "p99", "errors", "peak RSS", "incl. delivery")
	best := [2]phase{}
	for i, name := range []string{"reverse_proxy", "modulus_webhook"} {
		for _, p := range results[i] {
			if p.rps() > best[i].rps() {
				best[i] = p
			}
			sustained := ""
			if i == 1 {
				sustained = fmt.Sprintf("%.0f req/s", float64(p.ok)/(p.elapsed+p.drain).Seconds())
			}
			fmt.Printf("%-16s %10.0f %10v %10v %10d %9.1f MB %16s\n", name, p.rps(), p.p(50), p.p(99), p.failed, float64(p.peakRSS)/1024, sustained)
		}
	}
	fmt.Printf("\nratio modulus_webhook/reverse_proxy: best rounds %.2f; per round", best[1].rps()/best[0].rps())
	for r := range results[0] {
		fmt.Printf(" %.2f", results[1][r].rps()/results[0][r].rps())
	}
	fmt.Printf(" (target >= 0.5)\n")
	fmt.Printf("acknowledged webhooks: %d; delivered distinct: %d; delivered twice or more: %d (final check %v)\n",
		acked, app.distinct(), app.repeats(), drained.Round(time.Millisecond))
	fmt.Printf("spool writes per fsync (group commit): %.1f; gateway peak RSS over the run (VmHWM): %.1f MB\n",
		status.WritesPerCommit, float64(hwm)/1024)
	if app.distinct() < acked {
		log.Fatalf("FAIL: %d acknowledged webhooks were not delivered", acked-app.distinct())
	}
}

// app is the app stand-in behind both sites.
type app struct {
	mu         sync.Mutex
	deliveries map[string]int // Webhook-Id -> count
	plain      atomic.Int64
}

func newApp() *app { return &app{deliveries: make(map[string]int)} }

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/deliveries" {
		id := r.Header.Get("Webhook-Id")
		a.mu.Lock()
		a.deliveries[id]++
		a.mu.Unlock()
	} else {
		a.plain.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"received":true}`)
}

func (a *app) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.deliveries)
}

func (a *app) repeats() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.deliveries {
		if c > 1 {
			n++
		}
	}
	return n
}

// sealBodies makes n distinct webhook bodies, each a real compact JWE.
func sealBodies(prefix string, n int) []string {
	k, err := crypto.NewKey("bench", benchKey, crypto.EncodingUTF8)
	must(err)
	enc, err := crypto.NewEncrypter(k)
	must(err)
	out := make([]string, n)
	for i := range out {
		pt := fmt.Sprintf(`{"action":"QRPH_SUCCESS","referenceNumber":"%s-%07d","amount":%d,"currency":"PHP","timestamp":"2026-01-15T10:30:00Z"}`,
			prefix, i, 100+i)
		tok, err := enc.Encrypt([]byte(pt))
		must(err)
		out[i] = `{"data":"` + tok + `"}`
	}
	return out
}

type phase struct {
	ok, failed int
	elapsed    time.Duration
	latencies  []time.Duration
	peakRSS    int64         // KB
	drain      time.Duration // after the phase, until the app had every event
}

func (p phase) rps() float64 {
	if p.elapsed == 0 {
		return 0
	}
	return float64(p.ok) / p.elapsed.Seconds()
}

func (p phase) p(q float64) time.Duration {
	if len(p.latencies) == 0 {
		return 0
	}
	i := int(float64(len(p.latencies)-1) * q / 100)
	return p.latencies[i].Round(10 * time.Microsecond)
}

// load POSTs every body once with conc clients and times each answer.
func load(c *http.Client, url string, bodies []string, conc int) phase {
	var next atomic.Int64
	lat := make([]time.Duration, len(bodies))
	okFlags := make([]bool, len(bodies))
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					okFlags[i] = resp.StatusCode == http.StatusOK
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	p := phase{elapsed: time.Since(start), latencies: lat}
	for _, ok := range okFlags {
		if ok {
			p.ok++
		} else {
			p.failed++
		}
	}
	sort.Slice(p.latencies, func(i, j int) bool { return p.latencies[i] < p.latencies[j] })
	return p
}

func tlsClient(rootPath string, conc int) *http.Client {
	waitUntil(60*time.Second, "Caddy's local root certificate", func() bool {
		_, err := os.Stat(rootPath)
		return err == nil
	})
	pem, err := os.ReadFile(rootPath)
	must(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		log.Fatal("no certificate in root.crt")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        conc * 2,
		MaxIdleConnsPerHost: conc,
		ForceAttemptHTTP2:   false,
	}}
}

// rssSampler records the gateway's peak resident memory during a phase.
type rssSampler struct {
	pid  int
	stop func() int64
}

func (s *rssSampler) start() {
	ctx, cancel := context.WithCancel(context.Background())
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := readProcKB(s.pid, "VmRSS"); kb > peak.Load() {
				peak.Store(kb)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	s.stop = func() int64 { cancel(); <-done; return peak.Load() }
}

func readProcKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

// captureProfile fetches a 5 s CPU profile from the admin API's pprof.
func captureProfile(adminURL, path string) {
	resp, err := http.Get(adminURL + "/debug/pprof/profile?seconds=5")
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

type inboundStatus struct {
	Pending         int     `json:"pending"`
	WritesPerCommit float64 `json:"writes_per_commit"`
}

func statusOf(adminURL string) inboundStatus {
	resp, err := http.Get(adminURL + "/modulus/status")
	must(err)
	defer resp.Body.Close()
	var body struct {
		Inbound map[string]inboundStatus `json:"inbound"`
	}
	must(json.NewDecoder(resp.Body).Decode(&body))
	for _, s := range body.Inbound {
		return s
	}
	must(errors.New("no inbound section in /modulus/status"))
	return inboundStatus{}
}

func freePorts(n int) []int {
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func waitUntil(d time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			log.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
