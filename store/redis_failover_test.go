package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// The primary holding a spool dies under load, on a Sentinel set and on a
// Cluster with a replica per primary: the deployment promotes the replica
// and the same store (no reopen, no restart) follows it. Every event
// acknowledged with min_replicas 1 before the kill is on the promoted
// primary, and min_replicas 1 refuses the next event, since the promoted
// primary has no replica left.
func TestReplicatedSpoolSurvivesAFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) redistest.Failover
	}{
		{"sentinel", func(t *testing.T) redistest.Failover {
			return redistest.StartSentinel(t, redistest.SentinelOptions{DownAfter: time.Second, AppendOnly: true}).Failover()
		}},
		{"cluster", func(t *testing.T) redistest.Failover {
			return redistest.StartCluster(t, redistest.ClusterOptions{ReplicasPerPrimary: 1, NodeTimeout: 2 * time.Second, AppendOnly: true}).Failover()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testReplicatedSpoolSurvivesAFailover(t, tc.start(t))
		})
	}
}

func testReplicatedSpoolSurvivesAFailover(t *testing.T, rd redistest.Failover) {
	ctx := context.Background()
	r, err := store.OpenRedis(ctx, rd.URL(), store.RedisOptions{Prefix: "failover:"})
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
	key := store.RedisSpoolEventKey(s, "f00")
	old := rd.KillPrimary(t, key)
	killed := time.Now()
	var failed int
	waitUntil(t, "the store to follow the promotion", func() bool {
		_, err := r.Take(ctx, "rate:sandbox:acct_1", 1000, time.Minute)
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("take during the failover: %v", err)
		}
		if err != nil {
			failed++
			return false
		}
		st, err := s.Stats(ctx)
		return err == nil && st.Pending == n
	})
	t.Logf("the store followed the promotion %v after the primary was killed (%d calls unavailable meanwhile)",
		time.Since(killed).Round(10*time.Millisecond), failed)
	promoted := rd.WaitPromotion(t, key, old)
	if got, err := promoted.Do(ctx, "EXISTS", key).Int(); err != nil || got != 1 {
		t.Fatalf("the promoted primary %s lacks an acknowledged event: %d %v", promoted.Addr(), got, err)
	}
	if err := v.Put(ctx, pendingEvent("after", "key-after")); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("put with min_replicas 1 and no replica left: %v, want ErrNotReplicated", err)
	}
	evs, err := s.Claim(ctx, time.Now(), time.Minute, 2*n)
	if err != nil || len(evs) != n {
		t.Fatalf("claimed %d of the %d acknowledged events after the failover (%v)", len(evs), n, err)
	}
}
