package redistest

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the name the sentinels know the primary by.
const SentinelMaster = "qrphgate-test"

// SentinelOptions describe a primary, its replicas and three sentinels.
type SentinelOptions struct {
	// Replicas is the number of replicas; 1 when zero.
	Replicas int
	// DownAfter is how long the primary may be silent before the
	// sentinels fail it over; 5s when zero (a loaded test machine must not
	// fail over a healthy primary). Tests that kill the primary set it
	// short.
	DownAfter time.Duration
	// AppendOnly and TLS apply to every server (TLS covers replication
	// and the sentinels too).
	AppendOnly, TLS bool
}

// Sentinel is a primary with replicas watched by three redis-sentinel
// processes (quorum 2), as a self-managed highly available Redis runs.
type Sentinel struct {
	o         SentinelOptions
	servers   []*Server // the first primary, then the replicas
	sentinels []*Server
	certs     *certSet
}

// StartSentinel starts the servers and the sentinels and waits until every
// sentinel knows the primary, every replica and the other sentinels (a
// failover needs that); the processes are killed when the test ends. A
// missing redis-server or redis-sentinel skips the test outside CI and
// fails it under CI.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	return startSentinel(life{t: t}, o)
}

func startSentinel(l life, o SentinelOptions) *Sentinel {
	t := l.t
	t.Helper()
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.DownAfter == 0 {
		o.DownAfter = 5 * time.Second
	}
	base := l.tempDir()
	s := &Sentinel{o: o}
	if o.TLS {
		s.certs = newCertSet(t, base)
	}
	so := Options{AppendOnly: o.AppendOnly, TLS: o.TLS}
	var repl []string
	if o.TLS {
		repl = []string{"--tls-replication", "yes"}
	}
	for i := 0; i <= o.Replicas; i++ {
		dir := filepath.Join(base, fmt.Sprintf("server%d", i))
		mkdir(t, dir)
		extra := repl
		if i > 0 {
			extra = append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.servers[0].Port())}, repl...)
		}
		srv := newServer(l, "redis-server", so, dir, extra, s.certs)
		srv.Restart()
		s.servers = append(s.servers, srv)
	}
	for i := 0; i < 3; i++ {
		dir := filepath.Join(base, fmt.Sprintf("sentinel%d", i))
		mkdir(t, dir)
		conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s %[3]d\n"+
			"sentinel failover-timeout %[1]s 10000\n"+
			"sentinel parallel-syncs %[1]s 1\n",
			SentinelMaster, s.servers[0].Port(), o.DownAfter.Milliseconds())
		if o.TLS {
			conf += "tls-replication yes\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "sentinel.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		sn := newServer(l, "redis-sentinel", so, dir, nil, s.certs)
		sn.Restart()
		s.sentinels = append(s.sentinels, sn)
	}
	s.waitReady(t)
	return s
}

// waitReady waits until the primary has every replica online (in sync) and every
// sentinel knows the primary, the replicas and the two other sentinels.
func (s *Sentinel) waitReady(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 60*time.Second, "the sentinels to know every server", func() (bool, string) {
		p, err := s.primary(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, sn := range s.sentinels {
			replicas, err := sn.Do(ctx, "SENTINEL", "REPLICAS", SentinelMaster).Slice()
			if err != nil || len(replicas) != s.o.Replicas {
				return false, fmt.Sprintf("%s knows %d replicas (%v)", sn.Addr(), len(replicas), err)
			}
			others, err := sn.Do(ctx, "SENTINEL", "SENTINELS", SentinelMaster).Slice()
			if err != nil || len(others) != len(s.sentinels)-1 {
				return false, fmt.Sprintf("%s knows %d other sentinels (%v)", sn.Addr(), len(others), err)
			}
		}
		info, err := p.Do(ctx, "INFO", "replication").Text()
		if err != nil || strings.Count(info, "state=online") != s.o.Replicas {
			return false, fmt.Sprintf("primary %s, want %d replicas online: %v %s", p.Addr(), s.o.Replicas, err, info)
		}
		return true, ""
	})
}

// URL is the deployment's redis-sentinel:// URL for database 0
// (rediss-sentinel:// with TLS), listing the three sentinels.
func (s *Sentinel) URL() string {
	addrs := make([]string, len(s.sentinels))
	for i, sn := range s.sentinels {
		addrs[i] = sn.Addr()
	}
	scheme := "redis-sentinel://"
	if s.o.TLS {
		scheme = "rediss-sentinel://"
	}
	return scheme + strings.Join(addrs, ",") + "/" + SentinelMaster + "/0"
}

// Servers are the data servers: the first primary, then the replicas.
func (s *Sentinel) Servers() []*Server { return s.servers }

// Sentinels are the three sentinel processes.
func (s *Sentinel) Sentinels() []*Server { return s.sentinels }

// RootCAs is the CA of a TLS deployment's certificates; nil without TLS.
func (s *Sentinel) RootCAs() *x509.CertPool {
	if s.certs == nil {
		return nil
	}
	return s.certs.pool
}

// primaryAddr asks the sentinels for the primary's address; they must agree.
func (s *Sentinel) primaryAddr(ctx context.Context) (string, error) {
	var addr string
	for _, sn := range s.sentinels {
		hp, err := sn.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster).StringSlice()
		if err != nil || len(hp) != 2 {
			return "", fmt.Errorf("sentinel %s: %v %v", sn.Addr(), hp, err)
		}
		a := net.JoinHostPort(hp[0], hp[1])
		if addr != "" && a != addr {
			return "", fmt.Errorf("the sentinels disagree on the primary: %s and %s", addr, a)
		}
		addr = a
	}
	return addr, nil
}

func (s *Sentinel) byAddr(addr string) (*Server, error) {
	for _, srv := range s.servers {
		if srv.Addr() == addr {
			return srv, nil
		}
	}
	return nil, fmt.Errorf("%s is not a server of this deployment", addr)
}

// Primary is the server the sentinels name as the primary.
func (s *Sentinel) Primary(t testing.TB) *Server {
	t.Helper()
	p, err := s.primary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// primary is the server the sentinels agree is the primary.
func (s *Sentinel) primary(ctx context.Context) (*Server, error) {
	addr, err := s.primaryAddr(ctx)
	if err != nil {
		return nil, err
	}
	return s.byAddr(addr)
}

// KillPrimary SIGKILLs the current primary and returns it.
func (s *Sentinel) KillPrimary(t testing.TB) *Server {
	t.Helper()
	p := s.Primary(t)
	p.Kill()
	return p
}

// WaitPromotion waits until every sentinel names a primary other than old
// and that server answers as a primary; it returns the new primary.
func (s *Sentinel) WaitPromotion(t testing.TB, old *Server) *Server {
	t.Helper()
	ctx := context.Background()
	var primary *Server
	waitFor(t, 60*time.Second, "the sentinels to promote a replica", func() (bool, string) {
		p, err := s.primary(ctx)
		if err != nil {
			return false, err.Error()
		}
		if p == old {
			return false, "the sentinels still name " + old.Addr()
		}
		role, err := p.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "master" {
			return false, fmt.Sprintf("%s has role %v (%v)", p.Addr(), role, err)
		}
		primary = p
		return true, ""
	})
	return primary
}

// Stop stops every data server (SIGTERM); the sentinels keep running.
func (s *Sentinel) Stop() {
	for i := len(s.servers) - 1; i >= 0; i-- {
		s.servers[i].Stop()
	}
}

// Restart starts the stopped data servers again and waits until the
// deployment is whole. The one the sentinels name as the primary (all of
// them were stopped) comes back as the primary; any other as a replica of
// the current primary, as an operator brings back a failed primary after
// a failover (by itself it would come back as a second primary with stale
// data until the sentinels demote it).
func (s *Sentinel) Restart(t testing.TB) {
	t.Helper()
	primary := s.Primary(t)
	if !primary.Running() {
		primary.replicaOf(nil)
		primary.Restart()
	}
	for _, srv := range s.servers {
		if !srv.Running() {
			srv.replicaOf(primary)
			srv.Restart()
		}
	}
	s.waitReady(t)
}
