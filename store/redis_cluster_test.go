package store_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// Every key of a spool, its de-duplication marks included, is in the
// spool's slot, and every other key carries a hash tag of its own: a
// script that touched two slots would fail on a Cluster (or, worse, work
// only while its slots happen to share a node).
func TestRedisClusterKeysShareTheirScriptsSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := redistest.SharedCluster(t)
	b := redisBackend{"cluster", func(testing.TB) string { return cl.URL() }}
	prefix := testPrefix()
	r := openBackend(t, b, store.RedisOptions{Prefix: prefix})
	s := openTestRedisSpool(t, r, "slots", 0)
	for i := 0; i < 20; i++ {
		id, key := fmt.Sprintf("s%02d", i), fmt.Sprintf("key-%02d", i)
		if _, err := s.Add(ctx, key, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, pendingEvent(id, key)); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.Claim(ctx, time.Now(), time.Minute, 5)
	if err != nil || len(evs) != 5 {
		t.Fatalf("claim: %d %v", len(evs), err)
	}
	if err := s.Bury(ctx, evs[0].ID, 3, time.Now(), "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		acct := fmt.Sprintf("rate:sandbox:acct_%02d", i)
		if _, err := r.Take(ctx, acct, 100, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Begin(ctx, "idem:"+acct, "fp", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Add(ctx, "shared-"+acct, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	// Every key under the prefix, from every primary, with its slot.
	slots := map[string]int{}
	var mu sync.Mutex
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cl.Nodes()[0].Addr()}})
	defer cc.Close()
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			slot, err := c.ClusterKeySlot(ctx, iter.Val()).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			slots[iter.Val()] = int(slot)
			mu.Unlock()
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	spoolSlot := -1
	var spoolKeys, others int
	for k, slot := range slots {
		if !strings.Contains(k, "{") {
			t.Errorf("key %q carries no hash tag", k)
		}
		if !strings.HasPrefix(k, prefix+"{slots}:") {
			others++
			continue
		}
		spoolKeys++
		if spoolSlot == -1 {
			spoolSlot = slot
		}
		if slot != spoolSlot {
			t.Errorf("spool key %q is in slot %d, the spool's is %d", k, slot, spoolSlot)
		}
	}
	// 20 events, their 20 marks, due, recv, dead, owners and a claims set;
	// 20 windows, 20 idempotency keys and 20 shared marks.
	if spoolKeys < 45 || others != 60 {
		t.Fatalf("found %d spool keys and %d others: %v", spoolKeys, others, slots)
	}
	if mark := store.RedisSpoolMarkKey(s, "key-00"); slots[mark] != spoolSlot {
		t.Fatalf("the mark %q is not in the spool's slot", mark)
	}
}

// A live resharding under load: the slots of the spool and of a rate
// window move to other nodes and back while replicas take budget, put,
// claim and complete events. The client follows ASK and MOVED; every
// acknowledged event is delivered, and every failure is ErrUnavailable (a
// webhook the provider retries, an outbound call answered 503), never a
// wrong answer.
func TestRedisClusterResharding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	r, err := store.OpenRedis(ctx, cl.URL(), store.RedisOptions{Prefix: "reshard:"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := openTestRedisSpool(t, r, "webhooks", 0)
	spoolKey := store.RedisSpoolEventKey(s, "x")
	budgetKey := "reshard:budget:{rate:sandbox:acct_1}"

	var (
		stop               atomic.Bool
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		acked              = map[string]bool{}
		delivered          = map[string]int{}
		takes, puts, fails atomic.Int64
		unexpected         []error
	)
	fail := func(err error) {
		fails.Add(1)
		if !errors.Is(err, store.ErrUnavailable) {
			mu.Lock()
			unexpected = append(unexpected, err)
			mu.Unlock()
		}
	}
	wg.Add(3)
	go func() { // a replica's outbound calls
		defer wg.Done()
		for !stop.Load() {
			if g, err := r.Take(ctx, "rate:sandbox:acct_1", 1<<30, time.Minute); err != nil {
				fail(err)
			} else if !g.OK {
				fail(fmt.Errorf("refused: %+v", g))
			} else {
				takes.Add(1)
			}
		}
	}()
	go func() { // a replica's webhook receiver
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			id, key := fmt.Sprintf("r%05d", i), fmt.Sprintf("key-%05d", i)
			if _, err := s.Add(ctx, key, time.Hour); err != nil {
				fail(err)
				continue
			}
			if err := s.Put(ctx, pendingEvent(id, key)); err != nil {
				fail(err)
				_ = s.Remove(ctx, key)
				continue
			}
			puts.Add(1)
			mu.Lock()
			acked[id] = true
			mu.Unlock()
		}
	}()
	deliver := func() int {
		evs, err := s.Claim(ctx, time.Now(), time.Minute, 20)
		if err != nil {
			fail(err)
			return 0
		}
		for _, ev := range evs {
			if err := s.Complete(ctx, ev.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				fail(err)
			}
			mu.Lock()
			delivered[ev.ID]++
			mu.Unlock()
		}
		return len(evs)
	}
	go func() { // a replica's deliverer
		defer wg.Done()
		for !stop.Load() {
			deliver()
		}
	}()

	waitUntil(t, "traffic", func() bool { return puts.Load() > 20 && takes.Load() > 20 })
	nodes := cl.Nodes()
	for round := 0; round < 2; round++ {
		for _, key := range []string{spoolKey, budgetKey} {
			from := cl.Primary(t, key)
			to := nodes[0]
			for _, n := range nodes {
				if n != from {
					to = n
					break
				}
			}
			before := puts.Load() + takes.Load()
			cl.MoveSlot(t, key, to)
			if got := cl.Primary(t, key); got != to {
				t.Fatalf("the slot of %s is on %s, want %s", key, got.Addr(), to.Addr())
			}
			waitUntil(t, "traffic after the move", func() bool { return puts.Load()+takes.Load() > before+20 })
		}
	}
	stop.Store(true)
	wg.Wait()
	waitUntil(t, "every acknowledged event to be delivered", func() bool {
		deliver()
		mu.Lock()
		defer mu.Unlock()
		for id := range acked {
			if delivered[id] == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("%d takes and %d acknowledged puts across 4 slot moves; %d calls failed (unavailable)", takes.Load(), puts.Load(), fails.Load())
	if len(unexpected) > 0 {
		t.Fatalf("failures other than ErrUnavailable: %v", unexpected)
	}
}

// rediss-cluster:// against a cluster that speaks only TLS (clients, bus
// and replication), its certificates from a private CA.
func TestRedisClusterTLS(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, redistest.ClusterOptions{TLS: true})
	if !strings.HasPrefix(cl.URL(), "rediss-cluster://") {
		t.Fatalf("URL %s", cl.URL())
	}
	testTLSRoundTrip(t, cl.URL(), cl.RootCAs())
}

// testTLSRoundTrip opens url with and without the private CA: with it, a
// budget and a spool work; the system roots refuse the certificate.
func testTLSRoundTrip(t *testing.T, url string, cas *x509.CertPool) {
	t.Helper()
	ctx := context.Background()
	r, err := store.OpenRedis(ctx, url, store.RedisOptions{RootCAs: cas, Prefix: "tls:"})
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	defer r.Close()
	if g, err := r.Take(ctx, "acct", 1, time.Minute); err != nil || !g.OK {
		t.Fatalf("take: %+v %v", g, err)
	}
	if g, err := r.Take(ctx, "acct", 1, time.Minute); err != nil || g.OK {
		t.Fatalf("second take: %+v %v, want refused", g, err)
	}
	s := openTestRedisSpool(t, r, "", 0)
	if err := s.Put(ctx, pendingEvent("t1", "key-t1")); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.Claim(ctx, time.Now(), time.Minute, 10); err != nil || len(evs) != 1 {
		t.Fatalf("claim over TLS: %d %v", len(evs), err)
	}
	_, err = store.OpenRedis(ctx, url, store.RedisOptions{DialTimeout: time.Second})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("with the system roots: %v, want an untrusted certificate", err)
	}
}
