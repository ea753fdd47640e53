// Package redistest runs private Redis deployments for tests: one
// redis-server (Start), a Redis Cluster (StartCluster) and a primary with
// replicas watched by three sentinels (StartSentinel), each on free ports of
// 127.0.0.1 with its own temporary directory, stopped by PID when the test
// ends. Tests that stop, kill and restart servers must use them and never
// the shared server on 127.0.0.1:6379, which other tests use at the same
// time.
//
// SharedCluster and SharedSentinel start one deployment per test process
// for tests that only read and write (under key prefixes of their own);
// the package's TestMain stops them with StopShared.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/testenv"
)

// Options describe a server.
type Options struct {
	// AppendOnly turns on the append-only file with appendfsync always,
	// as a Redis holding a webhook spool must run; otherwise the server
	// keeps nothing on disk.
	AppendOnly bool
	// TLS serves only TLS (--port 0 --tls-port), with a certificate for
	// 127.0.0.1 from a throwaway CA (see Server.RootCAs); clients need no
	// certificate. A redis-server built without TLS skips the test outside
	// CI and fails it under CI.
	TLS bool
	// Args are further redis-server arguments, such as
	// "--rename-command", "CONFIG", "" (a managed server that refuses
	// CONFIG).
	Args []string
}

// Server is a redis-server (or redis-sentinel) process on a free port of
// 127.0.0.1.
type Server struct {
	t    testing.TB
	port int
	args []string
	tls  *tls.Config // for Ping; nil without TLS
	cas  *x509.CertPool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

// Start runs a redis-server with a fresh directory; it is stopped when the
// test ends. A missing redis-server skips the test outside CI and fails it
// under CI.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := newServer(life{t: t}, "redis-server", o, t.TempDir(), o.Args, nil)
	s.Restart()
	return s
}

// StartReplica runs a redis-server that replicates primary (a server from
// Start, without TLS) and waits until it is in sync; it is stopped when the
// test ends. Nothing fails it over: a test that needs failover uses
// StartSentinel or StartCluster.
func StartReplica(t testing.TB, primary *Server, o Options) *Server {
	t.Helper()
	if o.TLS || primary.tls != nil {
		t.Fatal("redistest: StartReplica does not do TLS; use StartSentinel with TLS")
	}
	s := newServer(life{t: t}, "redis-server", o, t.TempDir(), o.Args, nil)
	s.replicaOf(primary)
	s.Restart()
	ctx := context.Background()
	waitFor(t, 30*time.Second, "the replica to sync with its primary", func() (bool, string) {
		info, err := s.Do(ctx, "INFO", "replication").Text()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(info, "master_link_status:up"), info
	})
	return s
}

// newServer prepares a redis-server (bin "redis-server") in dir with the
// given extra arguments, or a redis-sentinel (bin "redis-sentinel") reading
// dir/sentinel.conf, which the caller writes. With o.TLS, certs are the
// deployment's certificates (nil: new ones in dir). The process is killed
// when l ends.
func newServer(l life, bin string, o Options, dir string, extra []string, certs *certSet) *Server {
	t := l.t
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		what := bin
		if bin == "redis-sentinel" {
			what = "redis-sentinel (Debian package redis-sentinel)"
		}
		testenv.Missing(t, "%s: %v", what, err)
	}
	s := &Server{t: t, port: testenv.FreePort(t)}
	if bin == "redis-sentinel" {
		s.args = []string{filepath.Join(dir, "sentinel.conf")}
	}
	s.args = append(s.args, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no", "--logfile", "", "--protected-mode", "no")
	if bin == "redis-server" {
		s.args = append(s.args, "--save", "")
		if o.AppendOnly {
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			s.args = append(s.args, "--appendonly", "no")
		}
	}
	if o.TLS {
		if certs == nil {
			certs = newCertSet(t, dir)
		}
		s.cas = certs.pool
		s.tls = &tls.Config{RootCAs: s.cas, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		s.args = append(s.args, "--port", "0", "--tls-port", strconv.Itoa(s.port))
		s.args = append(s.args, certs.args()...)
	} else {
		s.args = append(s.args, "--port", strconv.Itoa(s.port))
	}
	s.args = append(append([]string{path}, s.args...), extra...)
	l.onEnd(func() {
		s.Kill()
		if !l.shared && t.Failed() {
			t.Logf("%s %s output:\n%s", bin, s.Addr(), s.Logs())
		}
	})
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.port }

// URL is the URL of database 0: rediss:// for a TLS server.
func (s *Server) URL() string {
	if s.tls != nil {
		return "rediss://" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// RootCAs holds the CA that signed a TLS server's certificate; nil without
// TLS.
func (s *Server) RootCAs() *x509.CertPool { return s.cas }

// TLSConfig is what a client needs to reach a TLS server; nil without TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// Logs returns what the server printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

type lockedWriter struct{ s *Server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}

// Restart starts the server (again, on the same port and directory) and
// waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	if s.cmd != nil && !exited(s.done) {
		s.mu.Unlock()
		s.t.Fatal("redistest: the server is already running")
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = lockedWriter{s}, lockedWriter{s}
	if err := spawn(cmd); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("starting %s: %v", s.args[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for !s.Ping() {
		if exited(done) && s.tls != nil && noTLS(s.Logs()) {
			testenv.Missing(s.t, "redis-server with TLS support (this one was built without it; Debian's redis-server has it):\n%s", s.Logs())
		}
		if exited(done) || time.Now().After(deadline) {
			s.t.Fatalf("%s on %s did not answer PING:\n%s", filepath.Base(s.args[0]), s.Addr(), s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ping reports whether the server answers PING now.
func (s *Server) Ping() bool {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 200 * time.Millisecond}
	if s.tls != nil {
		c, err = tls.DialWithDialer(d, "tcp", s.Addr(), s.tls)
	} else {
		c, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// replicaOf sets the primary a stopped server replicates from when it
// starts (nil: none, it starts as a primary).
func (s *Server) replicaOf(primary *Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := make([]string, 0, len(s.args)+3)
	for i := 0; i < len(s.args); i++ {
		if s.args[i] == "--replicaof" && i+2 < len(s.args) {
			i += 2
			continue
		}
		args = append(args, s.args[i])
	}
	if primary != nil {
		args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
	}
	s.args = args
}

// Running reports whether the process is alive (it may not answer yet).
func (s *Server) Running() bool {
	cmd, _ := s.process()
	return cmd != nil
}

// PID is the process id of the running process; 0 when none runs.
func (s *Server) PID() int {
	if cmd, _ := s.process(); cmd != nil {
		return cmd.Process.Pid
	}
	return 0
}

// process is the running process and the channel closed when it exits;
// nil when none runs.
func (s *Server) process() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || exited(s.done) {
		return nil, nil
	}
	return s.cmd, s.done
}

// Pause stops the process with SIGSTOP: it keeps its connections open but
// answers nothing, as a server stalled by the machine does, until Resume.
func (s *Server) Pause() { s.send(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() { s.send(syscall.SIGCONT) }

// send sends sig to the running process without waiting for it to exit.
func (s *Server) send(sig syscall.Signal) {
	s.t.Helper()
	cmd, _ := s.process()
	if cmd == nil {
		s.t.Fatalf("redistest: %s on %s is not running", sig, s.Addr())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %s to %s: %v", sig, s.Addr(), err)
	}
}

// Stop sends SIGTERM (Redis flushes its append-only file) and waits.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	cmd, done := s.process()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process acts on sig only once it runs
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func exited(done chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// noTLS reports whether redis-server refused the TLS options, as a build
// without TLS does ("Bad directive" on the tls-port line).
func noTLS(logs string) bool {
	return strings.Contains(logs, "Bad directive") && strings.Contains(logs, "tls-")
}
