// Package redistest runs a private redis-server for tests that stop, kill
// and restart it. Those tests must never touch the shared server on
// 127.0.0.1:6379, which other tests use at the same time.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
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
}

// Server is a redis-server process on a free port of 127.0.0.1.
type Server struct {
	t    testing.TB
	port int
	args []string

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
	s.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
		"--save", "", "--daemonize", "no", "--logfile", "", "--protected-mode", "no"}
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

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

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
		if exited(done) || time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer PING:\n%s", s.Addr(), s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ping reports whether the server answers PING now.
func (s *Server) Ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
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
