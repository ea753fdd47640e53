package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// The cost of one admission on each back end, from concurrent callers (the
// outbound hot path makes one Take per upstream call). The limit is high
// enough never to refuse.
func BenchmarkRateBudgetTake(b *testing.B) {
	backends := map[string]func(b *testing.B) store.RateBudget{
		"memory": func(*testing.B) store.RateBudget { return store.NewMemory(nil) },
		"file": func(b *testing.B) store.RateBudget {
			f, err := store.OpenFile(filepath.Join(b.TempDir(), "store.db"), store.FileOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = f.Close() })
			return f
		},
	}
	for _, rb := range redisBackends {
		backends[benchName(rb)] = func(b *testing.B) store.RateBudget { return openBackend(b, rb, store.RedisOptions{}) }
	}
	for _, name := range []string{"memory", "file", "redis", "redis-cluster", "redis-sentinel"} {
		b.Run(name, func(b *testing.B) {
			budget := backends[name](b)
			b.ResetTimer() // a shared Cluster or Sentinel set starts on first use
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if g, err := budget.Take(context.Background(), "acct", 1<<30, time.Minute); err != nil || !g.OK {
						b.Fatalf("take: %+v %v", g, err)
					}
				}
			})
		})
	}
}

// The cost of acknowledging a webhook on each spool, from concurrent
// receivers: one Put (and its de-duplication mark).
func BenchmarkSpoolPut(b *testing.B) {
	var seq atomic.Int64
	run := func(b *testing.B, s store.Spool) {
		b.ResetTimer()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprintf("b%09d", seq.Add(1))
				if err := s.Put(context.Background(), event(id, "k"+id, time.Now().Add(time.Hour))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("file", func(b *testing.B) {
		s, err := store.OpenBolt(filepath.Join(b.TempDir(), "spool.db"), store.BoltOptions{SweepEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
	redisSpool := func(b *testing.B, rb redisBackend) *store.RedisSpool {
		s, err := store.NewRedisSpool(context.Background(), openBackend(b, rb, store.RedisOptions{}), store.RedisSpoolOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	for _, rb := range redisBackends {
		b.Run(benchName(rb), func(b *testing.B) { run(b, redisSpool(b, rb)) })
	}
	// The acknowledgement that survives a failover: each Put waits for
	// the event to reach the Sentinel set's replica (WAIT 1).
	b.Run("redis-sentinel-min-replicas-1", func(b *testing.B) {
		v, err := redisSpool(b, backendNamed(b, "sentinel")).WithMinReplicas(1, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		run(b, v)
	})
}

func backendNamed(t testing.TB, name string) redisBackend {
	for _, rb := range redisBackends {
		if rb.name == name {
			return rb
		}
	}
	t.Fatalf("no Redis back end %q", name)
	return redisBackend{}
}

// benchName names a Redis back end in the benchmarks: redis (one server),
// redis-cluster, redis-sentinel.
func benchName(rb redisBackend) string {
	if rb.name == "single" {
		return "redis"
	}
	return "redis-" + rb.name
}
