package redistest

import (
	"crypto/x509"
	"testing"
)

// Failover is a deployment whose primary can fail over to a replica: a
// Sentinel set (Sentinel.Failover) or a Cluster with replicas
// (Cluster.Failover). Tests that kill a primary run the same steps on
// both through it.
type Failover interface {
	// URL names the deployment (store.OpenRedis, a gateway's store or
	// spool).
	URL() string
	// RootCAs is the CA of a TLS deployment's certificates; nil without
	// TLS.
	RootCAs() *x509.CertPool
	// Primary is the server that serves key now.
	Primary(t testing.TB, key string) *Server
	// KillPrimary SIGKILLs the primary that serves key and returns it.
	KillPrimary(t testing.TB, key string) *Server
	// WaitPromotion waits until a server other than old serves key (a
	// replica promoted after old failed) and returns it.
	WaitPromotion(t testing.TB, key string, old *Server) *Server
	// Restart starts the stopped servers again, a failed primary as a
	// replica of its successor, and waits until the deployment is whole.
	Restart(t testing.TB)
}

// Failover is the Sentinel set as a Failover; it has one primary, whatever
// the key.
func (s *Sentinel) Failover() Failover { return sentinelFailover{s} }

type sentinelFailover struct{ s *Sentinel }

func (f sentinelFailover) URL() string                            { return f.s.URL() }
func (f sentinelFailover) RootCAs() *x509.CertPool                { return f.s.RootCAs() }
func (f sentinelFailover) Primary(t testing.TB, _ string) *Server { return f.s.Primary(t) }
func (f sentinelFailover) KillPrimary(t testing.TB, _ string) *Server {
	t.Helper()
	return f.s.KillPrimary(t)
}
func (f sentinelFailover) WaitPromotion(t testing.TB, _ string, old *Server) *Server {
	t.Helper()
	return f.s.WaitPromotion(t, old)
}
func (f sentinelFailover) Restart(t testing.TB) { t.Helper(); f.s.Restart(t) }

// Failover is the Cluster as a Failover; it needs a replica per primary
// (ClusterOptions.ReplicasPerPrimary) to fail over.
func (c *Cluster) Failover() Failover { return clusterFailover{c} }

type clusterFailover struct{ c *Cluster }

func (f clusterFailover) URL() string             { return f.c.URL() }
func (f clusterFailover) RootCAs() *x509.CertPool { return f.c.RootCAs() }
func (f clusterFailover) Primary(t testing.TB, key string) *Server {
	t.Helper()
	return f.c.Primary(t, key)
}
func (f clusterFailover) KillPrimary(t testing.TB, key string) *Server {
	t.Helper()
	p := f.c.Primary(t, key)
	p.Kill()
	return p
}
func (f clusterFailover) WaitPromotion(t testing.TB, key string, old *Server) *Server {
	t.Helper()
	return f.c.WaitPromotion(t, key, old)
}
func (f clusterFailover) Restart(t testing.TB) { t.Helper(); f.c.Restart(t) }

// Interface guards.
var (
	_ Failover = sentinelFailover{}
	_ Failover = clusterFailover{}
)
