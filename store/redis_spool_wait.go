package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ErrNotReplicated is a ReplicatedSpool's Put that could not confirm, within
// its timeout, that the event reached enough replicas. It wraps
// ErrUnavailable too: the event is not stored, the webhook is not
// acknowledged, and the provider retries.
var ErrNotReplicated = errors.New("the event did not reach enough replicas in time")

// ReplicatedSpool is a view of a RedisSpool whose Put returns only once the
// event is on the primary and on at least MinReplicas of its replicas
// (Redis' WAIT), so that an acknowledged webhook survives a failover that
// promotes one of them. Redis replicates asynchronously: without the wait,
// an event acknowledged within the replication lag before the primary
// fails can be missing on the replica promoted in its place.
//
// Put writes the event held back from delivery and its de-duplication mark
// still reserved (another copy meanwhile is told to retry, not that it is
// a duplicate), waits, and then either releases the event and confirms the
// mark or, when fewer replicas answered in time, takes the event back out
// and fails with ErrNotReplicated: a refused event is never delivered. A
// replica that dies in between leaves an event held for putHold, then
// delivered (and the provider's retry too: a duplicate, never a loss).
// Everything but Put is the RedisSpool's.
type ReplicatedSpool struct {
	*RedisSpool
	n       int
	timeout time.Duration
}

// WithMinReplicas returns a view of s whose Put waits up to timeout for the
// event to reach n replicas (n > 0, timeout > 0). Closing the view leaves s
// open: the view does not own it.
func (s *RedisSpool) WithMinReplicas(n int, timeout time.Duration) (*ReplicatedSpool, error) {
	if n <= 0 || timeout <= 0 {
		return nil, errors.New("spool: min_replicas needs a positive count and timeout")
	}
	return &ReplicatedSpool{RedisSpool: s, n: n, timeout: timeout}, nil
}

// MinReplicas is how many replicas a Put waits for, and for how long.
func (v *ReplicatedSpool) MinReplicas() (int, time.Duration) { return v.n, v.timeout }

// putHold is how long after its due time an event whose Put is waiting
// for replicas stays hidden from Claim: past the wait's timeout, it only
// delays an event whose replica died before releasing it.
const putHold = 30 * time.Second

// redisReleaseScript makes an event that reached its replicas due, and
// confirms its mark (KEYS[2], when given).
var redisReleaseScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
if KEYS[2] and tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], 's', 'PX', ARGV[3]) end
return 1
`)

// redisUnputScript takes back an event whose Put did not reach enough
// replicas: only the one that Put wrote (ptok), and only while pending.
var redisUnputScript = redis.NewScript(redisRelease + `
if redis.call('HGET', KEYS[1], 'ptok') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'state') ~= 'p' then return 0 end
release(KEYS[1], ARGV[1], ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
`)

// Put implements Spool: see ReplicatedSpool.
func (v *ReplicatedSpool) Put(ctx context.Context, ev SpoolEvent) error {
	if err := v.checkPut(ctx, ev); err != nil {
		return err
	}
	keys, args := v.putArgs(ev, false, ev.NextAttempt.Add(v.timeout+putHold))
	return v.r.onPrimary(ctx, keys[0], func(conn *redis.Conn) error {
		// WAIT counts the replicas that have every write this connection
		// made: the Put and the WAIT must share it.
		if err := v.put(ctx, conn, keys, args); err != nil {
			return err
		}
		got, err := conn.Wait(ctx, v.n, v.timeout).Result()
		if err == nil && got >= int64(v.n) {
			relKeys, ttl := []string{v.p + "due"}, int64(0)
			if ev.DedupeKey != "" {
				relKeys, ttl = append(relKeys, v.markKey(ev.DedupeKey)), ev.DedupeUntil.Sub(ev.Received).Milliseconds()
			}
			if err := redisReleaseScript.Run(ctx, conn, relKeys, ev.ID, micros(ev.NextAttempt), ttl).Err(); err != nil {
				// The event is stored and replicated: acknowledge it. It
				// is delivered once its hold ends; its mark stays
				// reserved until it lapses, and a copy after that is
				// accepted again (a duplicate, never a loss).
				v.log.Warn("stored and replicated the event but could not release it for delivery at once",
					zap.String("event_id", ev.ID), zap.Duration("held_for", v.timeout+putHold), zap.Error(err))
			}
			return nil
		}
		if uerr := redisUnputScript.Run(ctx, conn, keys[:4], ev.ID, args[4], v.p+"claims:").Err(); uerr != nil {
			v.log.Warn("could not take back an event that did not reach enough replicas; it will be delivered after its hold (and perhaps again on the provider's retry)",
				zap.String("event_id", ev.ID), zap.Error(uerr))
		}
		if err != nil {
			return unavailable("spool wait", err)
		}
		return fmt.Errorf("%w: %w: %d of %d replicas within %v", ErrUnavailable, ErrNotReplicated, got, v.n, v.timeout)
	})
}

// Close implements Spool; the view does not own the spool, so it is a no-op.
func (v *ReplicatedSpool) Close() error { return nil }

// Interface guards.
var (
	_ Spool  = (*ReplicatedSpool)(nil)
	_ Dedupe = (*ReplicatedSpool)(nil)
)
