// Command compare runs every comparison of the performance targets in one go,
// on one machine, against one far end (a fake provider and a fake app in this
// process), and prints each ratio with its two raw figures:
//
//	(a) outbound: modulus_api (memory store) against plain Caddy reverse_proxy
//	    with keepalive_idle_conns_per_host 256: requests/s and p99;
//	(b) modulus_api with store redis://127.0.0.1:6379/… against the memory
//	    store, and the Redis round trips per call;
//	(c) inbound over TLS: modulus_webhook (file spool, every 200 after its
//	    fsync) against a plain TLS reverse_proxy, at each -senders count, and
//	    the spool's writes per fsync;
//	(d) footprint: idle RSS of a production-like config against plain Caddy,
//	    RSS with -queue calls waiting for rate slots, start-up to ready.
//
// Every outbound request carries a fresh merchantReferenceNumber, every
// webhook is a distinct, really encrypted event. Rounds alternate the
// targets so that they share the machine's noise. Usage (from the
// repository root; bench/run.sh wraps it):
//
//	go run ./bench/compare -duration 10s -rounds 3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

type options struct {
	bin      string
	duration time.Duration
	warmup   time.Duration
	rounds   int
	conns    int
	senders  []int
	webhooks int
	redis    string
	queue    int
	only     string
	pprof    string
	profileT string
	keep     bool
}

func main() {
	var o options
	var senders string
	flag.StringVar(&o.bin, "bin", "", "qrphgate binary (default: build ./cmd/qrphgate)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "outbound: length of each measured round per target")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "outbound: warm-up per target")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (outbound and inbound)")
	flag.IntVar(&o.conns, "conns", 64, "outbound: concurrent connections")
	flag.StringVar(&senders, "senders", "32,64", "inbound: concurrent senders, comma-separated")
	flag.IntVar(&o.webhooks, "webhooks", 12000, "inbound: webhooks per target per round and sender count")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis for (b); empty skips it")
	flag.IntVar(&o.queue, "queue", 10000, "footprint: calls queued for rate slots")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: outbound, inbound, footprint")
	flag.StringVar(&o.pprof, "cpuprofile", "", "write a CPU profile of the gateway under the mixed load (outbound and inbound) to this file")
	flag.StringVar(&o.profileT, "profile-target", "", "NAME=FILE: a CPU profile of the gateway during the first round of one outbound target (reverse_proxy, memory, redis; webhook: the inbound phase at the last sender count)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()
	log.SetFlags(0)
	for _, s := range strings.Split(senders, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			log.Fatalf("-senders: %q is not a positive number", s)
		}
		o.senders = append(o.senders, n)
	}
	dir, err := os.MkdirTemp("", "qrphgate-compare-")
	must(err)
	if o.keep {
		log.Printf("work directory %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.bin == "" {
		o.bin = filepath.Join(dir, "qrphgate")
		log.Printf("building %s", o.bin)
		cmd := exec.Command("go", "build", "-o", o.bin, "./cmd/qrphgate")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		must(cmd.Run())
	}
	far := startFarEnd()
	rep := report{out: map[string][]measure{}, in: map[int][][2]measure{}, trafficHWM: map[string]int64{}}
	want := func(part string) bool { return o.only == "" || strings.Contains(","+o.only+",", ","+part+",") }
	started := time.Now()
	// Outbound and inbound each get a gateway of their own (one heap each),
	// except for the mixed profile, which needs both at once.
	switch {
	case o.pprof != "":
		runTraffic(o, dir, far, want("outbound"), want("inbound"), &rep)
	default:
		if want("outbound") {
			runTraffic(o, dir, far, true, false, &rep)
		}
		if want("inbound") {
			runTraffic(o, dir, far, false, true, &rep)
		}
	}
	if want("footprint") {
		runFootprint(o, dir, far, &rep)
	}
	rep.print(o, time.Since(started))
}

// gateway is one running qrphgate process.
type gateway struct {
	cmd   *exec.Cmd
	admin string // http://127.0.0.1:port
	dir   string
}

// startGateway runs the binary on caddyfile and returns once its admin API
// answers, with the time that took.
func startGateway(o options, dir, name, caddyfile string, env ...string) (*gateway, time.Time) {
	gdir := filepath.Join(dir, name)
	must(os.MkdirAll(gdir, 0o700))
	cfg := filepath.Join(gdir, "Caddyfile")
	must(os.WriteFile(cfg, []byte(caddyfile), 0o600))
	logf, err := os.Create(filepath.Join(gdir, "qrphgate.log"))
	must(err)
	cmd := exec.Command(o.bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Dir = gdir
	cmd.Env = append(os.Environ(), append(env, "XDG_DATA_HOME="+filepath.Join(gdir, "data"), "XDG_CONFIG_HOME="+filepath.Join(gdir, "config"))...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = deathSignal()
	t0 := time.Now()
	must(cmd.Start())
	return &gateway{cmd: cmd, dir: gdir}, t0
}

func (g *gateway) stop() {
	_ = g.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
}

func (g *gateway) rssKB() int64 { return procKB(g.cmd.Process.Pid, "VmRSS") }

// cpu is the gateway's CPU time so far (user + system).
func (g *gateway) cpu() time.Duration { return procCPU(g.cmd.Process.Pid) }

func (g *gateway) status() map[string]map[string]json.RawMessage {
	var out map[string]map[string]json.RawMessage
	resp, err := http.Get(g.admin + "/modulus/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func (g *gateway) log() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "qrphgate.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func waitUntil(d time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			log.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
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

// captureProfile fetches a CPU profile of secs seconds from the admin API.
func captureProfile(ctx context.Context, admin, path string, secs int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, secs), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	must(err)
	defer f.Close()
	_, _ = f.ReadFrom(resp.Body)
}

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
