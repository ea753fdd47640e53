package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qrphgate/qrphgate/store"
)

// rawClient is a plain go-redis client to b's primary, for writing keys
// the way an earlier release did.
func rawClient(t *testing.T, b redisBackend) redis.UniversalClient {
	t.Helper()
	target, err := store.ParseRedisURL(b.url(t))
	if err != nil {
		t.Fatal(err)
	}
	var c redis.UniversalClient
	switch target.Mode {
	case store.RedisSentinel:
		c = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: target.Master, SentinelAddrs: target.Addrs, DB: target.DB})
	case store.RedisSingle:
		c = redis.NewClient(&redis.Options{Addr: target.Addrs[0], DB: target.DB})
	default:
		t.Fatalf("no earlier release ran on %s", b.name)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// An upgrade keeps every key a deployment has in Redis: on one server and
// under Sentinel (which earlier releases reached as one server) the key
// names are those of the releases before Cluster support, byte for byte.
// The keys below are written as those releases wrote them (raw commands,
// not this package's code, so a changed name fails here): a pending
// webhook, one a crashed replica had claimed, a dead letter, the
// de-duplication marks, idempotent answers and a rate window. The new code
// finds and delivers every one of them. (A Cluster has no earlier layout:
// no release ran on one.)
func TestRedisReadsTheLayoutOfEarlierReleases(t *testing.T) {
	forBackends(t, []string{"single", "sentinel"}, func(t *testing.T, b redisBackend) {
		ctx := context.Background()
		raw := rawClient(t, b)
		prefix := testPrefix()
		p := prefix + "webhooks:" // the spool's name in production
		now := time.Now()
		us := func(t time.Time) float64 { return float64(t.UnixMicro()) }
		event := func(id, state, owner string) map[string]any {
			return map[string]any{
				"state": state, "id": id, "action": "QRPH_SUCCESS", "ref": "ORDER-" + id, "code": "TEST-0000-0000-0001",
				"body": `{"referenceNumber":"ORDER-` + id + `"}`, "recv": strconv.FormatInt(now.UnixNano(), 10),
				"recvus": strconv.FormatInt(now.UnixMicro(), 10), "from": strconv.FormatInt(now.UnixNano(), 10),
				"attempts": "2", "next": strconv.FormatInt(now.UnixNano(), 10), "nextus": strconv.FormatInt(now.UnixMicro(), 10),
				"lasterr": "HTTP 503", "dead": "0", "dkey": "key-" + id,
				"duntil": strconv.FormatInt(now.Add(72*time.Hour).UnixNano(), 10), "owner": owner,
			}
		}
		pipe := raw.TxPipeline()
		pipe.HSet(ctx, p+"ev:old-pending", event("old-pending", "p", ""))
		pipe.ZAdd(ctx, p+"due", redis.Z{Score: us(now), Member: "old-pending"})
		pipe.ZAdd(ctx, p+"recv", redis.Z{Score: us(now), Member: "old-pending"})
		// Claimed by a replica that died: its lease ends in an hour, its
		// heartbeat stopped a minute ago.
		pipe.HSet(ctx, p+"ev:old-claimed", event("old-claimed", "p", "deadbeef00000000"))
		pipe.ZAdd(ctx, p+"due", redis.Z{Score: us(now.Add(time.Hour)), Member: "old-claimed"})
		pipe.ZAdd(ctx, p+"recv", redis.Z{Score: us(now), Member: "old-claimed"})
		pipe.SAdd(ctx, p+"claims:deadbeef00000000", "old-claimed")
		pipe.ZAdd(ctx, p+"owners", redis.Z{Score: float64(now.Add(-time.Minute).UnixMilli()), Member: "deadbeef00000000"})
		dead := event("old-dead", "d", "")
		dead["dead"] = strconv.FormatInt(now.UnixNano(), 10)
		pipe.HSet(ctx, p+"ev:old-dead", dead)
		pipe.ZAdd(ctx, p+"dead", redis.Z{Score: 0, Member: "old-dead"})
		pipe.Set(ctx, prefix+"dedupe:seen-key", "s", time.Hour)
		pipe.Set(ctx, prefix+"dedupe:reserved-key", "r", time.Minute)
		pipe.HSet(ctx, prefix+"idem:done-key", "s", "completed", "fp", "fp-1", "v", "the first answer")
		pipe.HSet(ctx, prefix+"idem:claimed-key", "s", "claimed", "fp", "fp-2")
		pipe.PExpire(ctx, prefix+"idem:claimed-key", time.Minute)
		for _, m := range []string{"a", "b", "c"} {
			pipe.ZAdd(ctx, prefix+"budget:rate:sandbox:acct_1", redis.Z{Score: us(now), Member: m})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}

		r := openBackend(t, b, store.RedisOptions{Prefix: prefix})
		s := openTestRedisSpool(t, r, "webhooks", 600*time.Millisecond)
		if st, err := s.Stats(ctx); err != nil || st.Pending != 2 || st.DeadLetters != 1 {
			t.Fatalf("stats of the earlier layout: %+v %v, want 2 pending and 1 dead letter", st, err)
		}
		got := map[string]store.SpoolEvent{}
		waitUntil(t, "both pending events to be claimable (the dead replica's claim handed back)", func() bool {
			evs, err := s.Claim(ctx, time.Now(), time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				got[ev.ID] = ev
			}
			return len(got) == 2
		})
		for id, ev := range got {
			if string(ev.Body) != `{"referenceNumber":"ORDER-`+id+`"}` || ev.Attempts != 2 || ev.DedupeKey != "key-"+id || !ev.Received.Equal(time.Unix(0, now.UnixNano())) {
				t.Fatalf("%s read back as %+v", id, ev)
			}
			if err := s.Complete(ctx, id); err != nil {
				t.Fatalf("complete %s: %v", id, err)
			}
		}
		if dl, err := s.DeadLetters(ctx, 10); err != nil || len(dl) != 1 || dl[0].ID != "old-dead" {
			t.Fatalf("dead letters: %+v %v", dl, err)
		}
		if ev, err := s.Replay(ctx, "old-dead", time.Now()); err != nil || ev.ID != "old-dead" {
			t.Fatalf("replay of an old dead letter: %+v %v", ev, err)
		}
		if added, err := s.Add(ctx, "seen-key", time.Hour); added || err != nil {
			t.Fatalf("an old mark: added %v %v, want a duplicate", added, err)
		}
		if added, err := s.Add(ctx, "reserved-key", time.Hour); added || !errors.Is(err, store.ErrPending) {
			t.Fatalf("an old reservation: added %v %v, want ErrPending", added, err)
		}
		if c, err := r.Begin(ctx, "done-key", "fp-1", time.Minute); err != nil || c.State != store.Completed || string(c.Value) != "the first answer" {
			t.Fatalf("an old idempotent answer: %+v %v", c, err)
		}
		if c, err := r.Begin(ctx, "claimed-key", "fp-2", time.Minute); err != nil || c.State != store.InFlight {
			t.Fatalf("an old claim: %+v %v, want in flight", c, err)
		}
		if n, err := r.Usage(ctx, "rate:sandbox:acct_1", time.Minute); err != nil || n != 3 {
			t.Fatalf("the old rate window holds %d calls (%v), want 3", n, err)
		}
	})
}
