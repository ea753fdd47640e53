package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

const testRedisURL = "redis://127.0.0.1:6379/0"

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

// redisBackend is one way Redis is deployed: the shared server on
// 127.0.0.1:6379 (which .ci/run starts), or this test process's shared
// Redis Cluster or Sentinel set (internal/redistest). Every test of the
// Redis back ends runs on each.
type redisBackend struct {
	name string
	url  func(t testing.TB) string
}

var redisBackends = []redisBackend{
	{"single", func(testing.TB) string { return testRedisURL }},
	{"cluster", func(t testing.TB) string { return redistest.SharedCluster(t).URL() }},
	{"sentinel", func(t testing.TB) string { return redistest.SharedSentinel(t).URL() }},
}

// forEachBackend runs f as a subtest per back end, all at once: t is
// parallel with the package's other tests, and its back ends run side by
// side without taking more of the -parallel slots (the suites mostly
// wait on Redis' clock).
func forEachBackend(t *testing.T, f func(t *testing.T, b redisBackend)) {
	forBackends(t, nil, f)
}

// forBackends is forEachBackend on the back ends named (all when nil).
func forBackends(t *testing.T, names []string, f func(t *testing.T, b redisBackend)) {
	t.Parallel()
	var wg sync.WaitGroup
	for _, b := range redisBackends {
		if names != nil && !slices.Contains(names, b.name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(b.name, func(t *testing.T) { f(t, b) })
		}()
	}
	wg.Wait()
}

var prefixSeq atomic.Int64

// testPrefix is a key prefix no other test (or earlier run against the
// shared server) uses.
func testPrefix() string {
	return fmt.Sprintf("qrphgate-test:%d:%d:", time.Now().UnixNano(), prefixSeq.Add(1))
}

// openTestRedis connects to the shared server on 127.0.0.1:6379 under a
// prefix no other run uses.
func openTestRedis(t *testing.T) *store.Redis {
	t.Helper()
	return openTestRedisWith(t, store.RedisOptions{})
}

func openTestRedisWith(t testing.TB, o store.RedisOptions) *store.Redis {
	t.Helper()
	return openBackend(t, redisBackends[0], o)
}

// openBackend connects to b under a fresh prefix (o.Prefix when set); the
// store is closed, and on the shared server its keys dropped, when the
// test ends.
func openBackend(t testing.TB, b redisBackend, o store.RedisOptions) *store.Redis {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = testPrefix()
	}
	r, err := store.OpenRedis(context.Background(), b.url(t), o)
	if err != nil {
		testenv.Missing(t, "redis (%s): %v", b.name, err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		if b.name == "single" {
			redistest.DropKeys(t, o.Prefix)
		}
	})
	return r
}

// Redis keeps its own clock, so the suite advances real time: the unit is
// long enough that scheduling noise cannot reorder the steps.
var realHarness = storetest.Harness{Unit: 500 * time.Millisecond, Advance: time.Sleep}

func TestRedisRateBudget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		storetest.RateBudget(t, openBackend(t, b, store.RedisOptions{}), realHarness)
	})
}

func TestRedisIdempotency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		storetest.Idempotency(t, openBackend(t, b, store.RedisOptions{}), realHarness)
	})
}

func TestRedisDedupe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		storetest.Dedupe(t, openBackend(t, b, store.RedisOptions{}), realHarness)
	})
}

// Two clients stand for two replicas: they share one budget.
func TestRedisBudgetSharedAcrossClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		prefix := testPrefix()
		replicas := []*store.Redis{
			openBackend(t, b, store.RedisOptions{Prefix: prefix}),
			openBackend(t, b, store.RedisOptions{Prefix: prefix}),
		}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(r *store.Redis) {
				defer wg.Done()
				if g, err := r.Take(context.Background(), "acct", 30, time.Minute); err == nil && g.OK {
					admitted.Add(1)
				}
			}(replicas[i%2])
		}
		wg.Wait()
		if admitted.Load() != 30 {
			t.Fatalf("%d admitted across two clients, want exactly 30", admitted.Load())
		}
	})
}

func TestRedisUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	_, err = store.OpenRedis(context.Background(), "redis://:FAKE-redis-password@"+addr+"/0", store.RedisOptions{DialTimeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "FAKE-redis-password") {
		t.Fatalf("error reveals the password: %v", err)
	}
}

func TestOpenRedisRejectsBadURLs(t *testing.T) {
	for _, raw := range []string{"memory", "http://127.0.0.1:6379", "redis://", "redis://:FAKE-pw@127.0.0.1:6379/notanumber", "rediss//x"} {
		_, err := store.OpenRedis(context.Background(), raw, store.RedisOptions{})
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%q: err = %v, want a URL error", raw, err)
		}
		if err != nil && strings.Contains(err.Error(), "FAKE-pw") {
			t.Errorf("%q: error reveals the password: %v", raw, err)
		}
	}
	if got := store.RedactURL("rediss://user:FAKE-pw@redis.internal:6380/2"); strings.Contains(got, "FAKE-pw") || !strings.Contains(got, "redis.internal:6380") {
		t.Fatalf("RedactURL = %q", got)
	}
}
