package redistest

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qrphgate/qrphgate/internal/testenv"
)

// ClusterOptions describe a Redis Cluster.
type ClusterOptions struct {
	// Primaries is the number of primaries, which share the slots; 3 when
	// zero (the fewest redis-cli accepts).
	Primaries int
	// ReplicasPerPrimary gives each primary that many replicas, which the
	// cluster promotes when their primary fails.
	ReplicasPerPrimary int
	// NodeTimeout is how long a node may be unreachable before the
	// others fail it over; 15s when zero (a loaded test machine must not
	// fail over a healthy node). Tests that kill nodes set it short.
	NodeTimeout time.Duration
	// AppendOnly and TLS apply to every node (TLS covers the cluster bus
	// and replication too).
	AppendOnly, TLS bool
}

// Cluster is a Redis Cluster of private redis-server processes, joined with
// redis-cli --cluster create.
type Cluster struct {
	t     testing.TB
	o     ClusterOptions
	nodes []*Server
	certs *certSet
}

// StartCluster starts a cluster and waits until every slot is served; its
// processes are killed when the test ends. A missing redis-server or
// redis-cli skips the test outside CI and fails it under CI.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	return startCluster(life{t: t}, o)
}

func startCluster(l life, o ClusterOptions) *Cluster {
	t := l.t
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		testenv.Missing(t, "redis-cli (Debian package redis-tools): %v", err)
	}
	if o.Primaries == 0 {
		o.Primaries = 3
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = 15 * time.Second
	}
	base := l.tempDir()
	c := &Cluster{t: t, o: o}
	if o.TLS {
		c.certs = newCertSet(t, base)
	}
	n := o.Primaries * (1 + o.ReplicasPerPrimary)
	addrs := make([]string, 0, n)
	for i := 0; i < n; i++ {
		dir := filepath.Join(base, fmt.Sprintf("node%d", i))
		mkdir(t, dir)
		extra := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			// The cluster bus gets a port of its own from FreePort
			// too: the default, the client port + 10000, is neither
			// checked nor reserved, and lands in the kernel's
			// ephemeral range, where any outgoing connection may hold it.
			"--cluster-port", strconv.Itoa(testenv.FreePort(t)),
			// Fail over whatever the replica's last contact: tests kill
			// primaries on purpose.
			"--cluster-replica-validity-factor", "0"}
		if o.TLS {
			extra = append(extra, "--tls-cluster", "yes", "--tls-replication", "yes")
		}
		s := newServer(l, "redis-server", Options{AppendOnly: o.AppendOnly, TLS: o.TLS}, dir, extra, c.certs)
		s.Restart()
		c.nodes = append(c.nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.ReplicasPerPrimary), "--cluster-yes")
	if o.TLS {
		args = append(args, "--tls", "--cacert", filepath.Join(base, "ca.pem"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		var logs strings.Builder
		for _, s := range c.nodes {
			fmt.Fprintf(&logs, "%s:\n%s\n", s.Addr(), s.Logs())
		}
		t.Fatalf("redis-cli --cluster create: %v\n%s\n%s", err, out, logs.String())
	}
	c.WaitHealthy(t)
	return c
}

// URL is the cluster's redis-cluster:// URL (rediss-cluster:// with TLS),
// listing every node as a seed.
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.Addr()
	}
	scheme := "redis-cluster://"
	if c.o.TLS {
		scheme = "rediss-cluster://"
	}
	return scheme + strings.Join(addrs, ",")
}

// Nodes are the cluster's servers, in the order they were created (the
// primaries first, as redis-cli assigns them).
func (c *Cluster) Nodes() []*Server { return c.nodes }

// RootCAs is the CA of a TLS cluster's certificates; nil without TLS.
func (c *Cluster) RootCAs() *x509.CertPool {
	if c.certs == nil {
		return nil
	}
	return c.certs.pool
}

// WaitHealthy waits until every running node reports cluster_state:ok
// and every running replica is in sync with its primary.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 60*time.Second, "the cluster to serve every slot", func() (bool, string) {
		for _, s := range c.nodes {
			if !s.Running() {
				continue
			}
			info, err := s.Do(ctx, "CLUSTER", "INFO").Text()
			if err != nil {
				return false, err.Error()
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return false, s.Addr() + ": " + info
			}
			repl, err := s.Do(ctx, "INFO", "replication").Text()
			if err != nil {
				return false, err.Error()
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return false, s.Addr() + " is a replica out of sync: " + repl
			}
			if strings.Contains(repl, "role:master") && strings.Count(repl, "slave") > 0 &&
				strings.Count(repl, "state=online") != strings.Count(repl, ",state=") {
				return false, s.Addr() + " has replicas out of sync: " + repl
			}
		}
		return true, ""
	})
}

// Primary returns the node that serves key's slot, as the running nodes
// see it.
func (c *Cluster) Primary(t testing.TB, key string) *Server {
	t.Helper()
	ctx := context.Background()
	for _, s := range c.nodes {
		if !s.Running() {
			continue
		}
		if owner, err := c.keyOwner(ctx, s, key); err == nil {
			return owner
		}
	}
	t.Fatalf("no running node knows who serves %q", key)
	return nil
}

// WaitPromotion waits until the running nodes agree that a node other than
// old serves key's slot (a replica promoted after old failed) and the
// cluster serves every slot again; it returns the new primary.
func (c *Cluster) WaitPromotion(t testing.TB, key string, old *Server) *Server {
	t.Helper()
	ctx := context.Background()
	var primary *Server
	waitFor(t, 60*time.Second, "the cluster to promote a replica", func() (bool, string) {
		var owner *Server
		for _, s := range c.nodes {
			if !s.Running() {
				continue
			}
			o, err := c.keyOwner(ctx, s, key)
			if err != nil {
				return false, err.Error()
			}
			if o == old || (owner != nil && o != owner) {
				return false, fmt.Sprintf("%s says %s serves %q", s.Addr(), o.Addr(), key)
			}
			owner = o
		}
		primary = owner
		return owner != nil, "no running node"
	})
	c.WaitHealthy(t)
	return primary
}

// keyOwner asks s which node serves key's slot.
func (c *Cluster) keyOwner(ctx context.Context, s *Server, key string) (*Server, error) {
	slot, err := s.Do(ctx, "CLUSTER", "KEYSLOT", key).Int()
	if err != nil {
		return nil, err
	}
	return c.slotOwner(ctx, s, slot)
}

// slotOwner asks s which node serves slot.
func (c *Cluster) slotOwner(ctx context.Context, s *Server, slot int) (*Server, error) {
	nodes, err := s.Do(ctx, "CLUSTER", "NODES").Text()
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, _ := strings.Cut(r, "-")
			if hi == "" {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				return c.byAddr(strings.Split(f[1], "@")[0])
			}
		}
	}
	return nil, fmt.Errorf("no node serves slot %d", slot)
}

func (c *Cluster) byAddr(addr string) (*Server, error) {
	for _, s := range c.nodes {
		if s.Addr() == addr {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s is not a node of this cluster", addr)
}

// nodeID is s's id in the cluster.
func nodeID(ctx context.Context, s *Server) (string, error) {
	return s.Do(ctx, "CLUSTER", "MYID").Text()
}

// MoveSlot migrates the slot that holds key, with its keys, to node to,
// as a live resharding does: the slot is marked importing and migrating
// (clients get ASK for the keys already moved), the keys are moved a few
// at a time, and the slot is handed over (clients then get MOVED). It
// returns the node that served the slot before.
func (c *Cluster) MoveSlot(t testing.TB, key string, to *Server) *Server {
	t.Helper()
	ctx := context.Background()
	from := c.Primary(t, key)
	if from == to {
		return from
	}
	slot, err := to.Do(ctx, "CLUSTER", "KEYSLOT", key).Int()
	if err != nil {
		t.Fatal(err)
	}
	fromID, err1 := nodeID(ctx, from)
	toID, err2 := nodeID(ctx, to)
	if err1 != nil || err2 != nil {
		t.Fatalf("node ids: %v %v", err1, err2)
	}
	must := func(s *Server, args ...any) {
		t.Helper()
		if err := s.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%s %v: %v", s.Addr(), args, err)
		}
	}
	must(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID)
	must(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID)
	for {
		keys, err := from.Do(ctx, "CLUSTER", "GETKEYSINSLOT", slot, 3).StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", to.Port(), "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(from, args...)
	}
	must(to, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	must(from, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	for _, s := range c.nodes {
		if s != from && s != to && s.Running() {
			must(s, "CLUSTER", "SETSLOT", slot, "NODE", toID)
		}
	}
	return from
}

// Stop stops every node (SIGTERM).
func (c *Cluster) Stop() {
	for _, s := range c.nodes {
		s.Stop()
	}
}

// Restart starts every stopped node again and waits until the cluster
// serves every slot.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	for _, s := range c.nodes {
		if !s.Running() {
			s.Restart()
		}
	}
	c.WaitHealthy(t)
}

// Do runs one command on s with a short-lived client.
func (s *Server) Do(ctx context.Context, args ...any) *redis.Cmd {
	cl := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: s.TLSConfig(), DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, MaxRetries: -1, Protocol: 2})
	defer cl.Close()
	return cl.Do(ctx, args...)
}

// waitFor polls cond until it holds; past timeout the test fails with the
// last reason cond gave.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
