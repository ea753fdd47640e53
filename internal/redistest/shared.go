package redistest

import (
	"os"
	"sync"
	"testing"
)

// life is how long a deployment lives: until its test ends, or (shared)
// until StopShared.
type life struct {
	t      testing.TB // reports start-up failures
	shared bool
}

// onEnd registers f to run when the deployment's life ends.
func (l life) onEnd(f func()) {
	if l.shared {
		shared.mu.Lock()
		shared.stops = append(shared.stops, f)
		shared.mu.Unlock()
		return
	}
	l.t.Cleanup(f)
}

// tempDir is a fresh directory that lives as long as the deployment.
func (l life) tempDir() string {
	if !l.shared {
		return l.t.TempDir()
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		l.t.Fatal(err)
	}
	l.onEnd(func() { _ = os.RemoveAll(dir) })
	return dir
}

var shared struct {
	mu       sync.Mutex // guards stops
	stops    []func()
	startMu  sync.Mutex // held while a shared deployment starts
	cluster  *Cluster
	sentinel *Sentinel
}

// SharedCluster returns the test process's Redis Cluster (three primaries,
// no replicas), starting it on first use. Tests share it: each must use
// key prefixes of its own, and none may stop or kill its nodes. The
// package's TestMain must call StopShared.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.startMu.Lock()
	defer shared.startMu.Unlock()
	if shared.cluster == nil {
		shared.cluster = startCluster(life{t: t, shared: true}, ClusterOptions{})
	}
	return shared.cluster
}

// SharedSentinel returns the test process's primary, replica and three
// sentinels, starting them on first use. Tests share them: each must use
// key prefixes of its own, and none may stop or kill a process. The
// package's TestMain must call StopShared.
func SharedSentinel(t testing.TB) *Sentinel {
	t.Helper()
	shared.startMu.Lock()
	defer shared.startMu.Unlock()
	if shared.sentinel == nil {
		shared.sentinel = startSentinel(life{t: t, shared: true}, SentinelOptions{})
	}
	return shared.sentinel
}

// StopShared kills the shared deployments' processes and removes their
// directories; TestMain calls it after m.Run.
func StopShared() {
	shared.startMu.Lock()
	shared.cluster, shared.sentinel = nil, nil
	shared.startMu.Unlock()
	shared.mu.Lock()
	stops := shared.stops
	shared.stops = nil
	shared.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}
