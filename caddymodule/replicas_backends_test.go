package caddymodule

import (
	"testing"

	"github.com/qrphgate/qrphgate/internal/redistest"
)

// replicaRedis is a private Redis deployment the replicas of one test
// share.
type replicaRedis interface {
	// URL is what the replicas' store and spool name.
	URL() string
	// Stop stops every Redis server; Restart starts them again and waits
	// until the deployment serves.
	Stop()
	Restart(t testing.TB)
}

// replicaBackend is a way Redis is deployed; every replica test runs on
// each.
type replicaBackend struct {
	name string
	// start starts a private deployment (appendOnly: every server keeps
	// an append-only file, as one holding a spool must); it stops when
	// the test ends.
	start func(t *testing.T, appendOnly bool) replicaRedis
}

var replicaBackends = []replicaBackend{
	{"single", func(t *testing.T, appendOnly bool) replicaRedis {
		return singleServer{redistest.Start(t, redistest.Options{AppendOnly: appendOnly})}
	}},
	{"cluster", func(t *testing.T, appendOnly bool) replicaRedis {
		return redistest.StartCluster(t, redistest.ClusterOptions{AppendOnly: appendOnly})
	}},
	{"sentinel", func(t *testing.T, appendOnly bool) replicaRedis {
		return redistest.StartSentinel(t, redistest.SentinelOptions{AppendOnly: appendOnly})
	}},
}

// singleServer is one redis-server as a replicaRedis.
type singleServer struct{ *redistest.Server }

func (s singleServer) Restart(testing.TB) { s.Server.Restart() }

// forEachReplicaBackend runs f as a subtest per back end, one after the
// other (each runs two gateways).
func forEachReplicaBackend(t *testing.T, f func(t *testing.T, b replicaBackend)) {
	for _, b := range replicaBackends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}
