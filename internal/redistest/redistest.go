// Package redistest runs a private redis-server for tests that stop, kill
// and restart it. Those tests must never touch the shared server on
// 127.0.0.1:6379, which other tests use at the same time.
package redistest

import (
	"bufio"
	"bytes"
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

// Options describe the server.
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
}

// Server is a redis-server process on a free port of 127.0.0.1.
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, port: port}
	dir := t.TempDir()
	s.args = []string{"--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--daemonize", "no", "--logfile", "", "--protected-mode", "no"}
	if o.TLS {
		s.cas = writeTestCerts(t, dir)
		s.tls = &tls.Config{RootCAs: s.cas, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		s.args = append(s.args, "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", filepath.Join(dir, "server.pem"), "--tls-key-file", filepath.Join(dir, "server.key"),
			"--tls-ca-cert-file", filepath.Join(dir, "ca.pem"), "--tls-auth-clients", "no")
	} else {
		s.args = append(s.args, "--port", strconv.Itoa(port))
	}
	if o.AppendOnly {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	s.args = append([]string{bin}, s.args...)
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", s.Logs())
		}
	})
	s.Restart()
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

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
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("starting redis-server: %v", err)
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
			s.t.Fatalf("redis-server on %s did not answer PING:\n%s", s.Addr(), s.Logs())
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

// Stop sends SIGTERM (Redis flushes its append-only file) and waits.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || exited(done) {
		return
	}
	_ = cmd.Process.Signal(sig)
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
