package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// The primary of a Sentinel set dies under load: the sentinels promote the
// replica and the same store (no reopen, no restart) follows it. Every
// event acknowledged with min_replicas 1 before the kill is on the new
// primary.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set := redistest.StartSentinel(t, redistest.SentinelOptions{DownAfter: time.Second, AppendOnly: true})
	r, err := store.OpenRedis(ctx, set.URL(), store.RedisOptions{Prefix: "failover:"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := openTestRedisSpool(t, r, "webhooks", 0)
	v := replicated(t, s, 1, 5*time.Second)
	const n = 30
	for i := 0; i < n; i++ {
		if err := v.Put(ctx, pendingEvent(fmt.Sprintf("f%02d", i), fmt.Sprintf("key-f%02d", i))); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	old := set.KillPrimary(t)
	killed := time.Now()
	var failed int
	waitUntil(t, "the store to follow the promotion", func() bool {
		g, err := r.Take(ctx, "rate:sandbox:acct_1", 1000, time.Minute)
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("take during the failover: %v", err)
		}
		if err != nil {
			failed++
		}
		return err == nil && g.OK
	})
	t.Logf("the store followed the promotion %v after the primary was killed (%d calls unavailable meanwhile)",
		time.Since(killed).Round(10*time.Millisecond), failed)
	promoted := set.WaitPromotion(t, old)
	if n, err := promoted.Do(ctx, "EXISTS", store.RedisSpoolEventKey(s, "f00")).Int(); err != nil || n != 1 {
		t.Fatalf("the promoted primary %s lacks an acknowledged event: %d %v", promoted.Addr(), n, err)
	}
	evs, err := s.Claim(ctx, time.Now(), time.Minute, 2*n)
	if err != nil || len(evs) != n {
		t.Fatalf("claimed %d of the %d acknowledged events after the failover (%v)", len(evs), n, err)
	}
}

// rediss-sentinel:// against sentinels and servers that speak only TLS.
func TestRedisSentinelTLS(t *testing.T) {
	t.Parallel()
	set := redistest.StartSentinel(t, redistest.SentinelOptions{TLS: true})
	if !strings.HasPrefix(set.URL(), "rediss-sentinel://") {
		t.Fatalf("URL %s", set.URL())
	}
	testTLSRoundTrip(t, set.URL(), set.RootCAs())
}
