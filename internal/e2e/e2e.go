// Package e2e runs the real qrphgate binary as a subprocess for end-to-end
// and crash tests: it builds cmd/qrphgate once per test process (with -race
// when the tests themselves run with -race), starts it on a Caddyfile with an
// isolated data directory, waits until its admin API answers, and stops or
// kills it.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a freshly built qrphgate binary.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qrphgate-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "qrphgate")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/qrphgate")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FreePort returns a TCP port on 127.0.0.1 for a listener of a test (see
// testenv.FreePort).
func FreePort(t testing.TB) int { return testenv.FreePort(t) }

// Options describe one gateway process.
type Options struct {
	// Caddyfile is the configuration. Its global block must set
	// `admin <AdminAddr>` so that parallel gateways do not collide.
	Caddyfile string
	// AdminAddr is the admin listener the Caddyfile sets (host:port).
	AdminAddr string
	// Env adds KEY=VALUE pairs to the process environment.
	Env []string
	// Dir is the working and data directory; a fresh temp dir when empty.
	// Reuse one across restarts to keep the spool and certificates.
	Dir string
}

// Gateway is a running qrphgate process.
type Gateway struct {
	t      testing.TB
	opts   Options
	cmd    *exec.Cmd
	logs   *SyncBuffer
	done   chan struct{}
	waitMu sync.Mutex
}

// Start writes the Caddyfile, runs `qrphgate run` and waits until the
// admin API answers. The process is stopped when the test ends.
func Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.AdminAddr == "" {
		t.Fatal("e2e.Options.AdminAddr is required")
	}
	cfg := filepath.Join(opts.Dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(opts.Caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{t: t, opts: opts, logs: new(SyncBuffer), done: make(chan struct{})}
	g.cmd = exec.Command(Binary(t), "run", "--config", cfg, "--adapter", "caddyfile")
	g.cmd.Dir = opts.Dir
	g.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(opts.Dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(opts.Dir, "config"),
		"HOME="+opts.Dir,
	)
	g.cmd.Env = append(g.cmd.Env, opts.Env...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("qrphgate output:\n%s", g.Logs())
		}
	})
	g.waitReady()
	return g
}

func (g *Gateway) waitReady() {
	g.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			g.t.Fatalf("qrphgate exited during start-up:\n%s", g.Logs())
		default:
		}
		resp, err := http.Get("http://" + g.opts.AdminAddr + "/config/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("qrphgate not ready after 60s:\n%s", g.Logs())
}

// Logs returns everything the process printed so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// Admin returns the admin API base URL.
func (g *Gateway) Admin() string { return "http://" + g.opts.AdminAddr }

// Dir is the process's working and data directory.
func (g *Gateway) Dir() string { return g.opts.Dir }

// Pid is the process's id (for what a test does to the process itself,
// such as its resource limits).
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// Stop sends SIGTERM (a graceful shutdown) and waits, killing after 15 s.
func (g *Gateway) Stop() { g.signal(syscall.SIGTERM, 15*time.Second) }

// Kill sends SIGKILL: a crash, with no chance to flush anything.
func (g *Gateway) Kill() { g.signal(syscall.SIGKILL, 15*time.Second) }

// Exited reports whether the process has ended.
func (g *Gateway) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

func (g *Gateway) signal(sig syscall.Signal, wait time.Duration) {
	g.waitMu.Lock()
	defer g.waitMu.Unlock()
	if g.Exited() {
		return
	}
	_ = g.cmd.Process.Signal(sig)
	select {
	case <-g.done:
	case <-time.After(wait):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// Run executes the binary with args (for version, adapt, validate...) and
// returns its combined output.
func Run(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// WaitFor polls cond every 20 ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SyncBuffer collects a subprocess's output for reading while it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Contains reports whether the logs so far contain sub.
func (g *Gateway) Contains(sub string) bool { return strings.Contains(g.Logs(), sub) }
