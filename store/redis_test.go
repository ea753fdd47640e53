package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

const testRedisURL = "redis://127.0.0.1:6379/0"

// openTestRedis connects to the Redis on 127.0.0.1:6379 (which .ci/run
// starts) under a prefix no other run uses.
func openTestRedis(t *testing.T) *store.Redis {
	t.Helper()
	return openTestRedisWith(t, store.RedisOptions{})
}

func openTestRedisWith(t testing.TB, o store.RedisOptions) *store.Redis {
	t.Helper()
	o.Prefix = fmt.Sprintf("qrphgate-test:%d:", time.Now().UnixNano())
	r, err := store.OpenRedis(context.Background(), testRedisURL, o)
	if err != nil {
		testenv.Missing(t, "redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		dropKeys(t, o.Prefix)
	})
	return r
}

// dropKeys deletes what a test left under prefix on the shared server
// (spooled events do not expire on their own).
func dropKeys(t testing.TB, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Logf("dropping %d test keys: %v", len(keys), err)
		}
	}
}

// Redis keeps its own clock, so the suite advances real time: the unit is
// long enough that scheduling noise cannot reorder the steps.
var realHarness = storetest.Harness{Unit: 500 * time.Millisecond, Advance: time.Sleep}

func TestRedisRateBudget(t *testing.T) {
	t.Parallel()
	storetest.RateBudget(t, openTestRedis(t), realHarness)
}

func TestRedisIdempotency(t *testing.T) {
	t.Parallel()
	storetest.Idempotency(t, openTestRedis(t), realHarness)
}

func TestRedisDedupe(t *testing.T) {
	t.Parallel()
	storetest.Dedupe(t, openTestRedis(t), realHarness)
}

// Two clients stand for two replicas: they share one budget.
func TestRedisBudgetSharedAcrossClients(t *testing.T) {
	t.Parallel()
	prefix := fmt.Sprintf("qrphgate-test:shared:%d:", time.Now().UnixNano())
	var replicas []*store.Redis
	for i := 0; i < 2; i++ {
		r, err := store.OpenRedis(context.Background(), testRedisURL, store.RedisOptions{Prefix: prefix})
		if err != nil {
			testenv.Missing(t, "redis: %v", err)
		}
		defer r.Close()
		replicas = append(replicas, r)
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
