package store

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// A de-duplication key holds "r" while reserved (Add) and "s" once its
// event is stored (Confirm, or a Redis spool's Put); any other value is
// taken as seen.
var reserveScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == 'r' then return 2 end
if v then return 0 end
redis.call('SET', KEYS[1], 'r', 'PX', ARGV[1])
return 1
`)

// Add implements Dedupe: it reserves key for at most the Reservation
// option (ttl if shorter). Confirm, or a RedisSpool Put of the event
// carrying the key, makes it seen for the whole dedupe window. A
// reservation held by someone else is ErrPending.
func (r *Redis) Add(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return r.reserveMark(ctx, r.keys.dedupe(key), ttl)
}

// reserveMark is Add on the mark named k (the store's or a spool's).
func (r *Redis) reserveMark(ctx context.Context, k string, ttl time.Duration) (bool, error) {
	res, err := reserveScript.Run(ctx, r.c, []string{k}, min(ttl, r.reserve).Milliseconds()).Int()
	if err != nil {
		return false, unavailable("add", err)
	}
	switch res {
	case 1:
		return true, nil
	case 2:
		return false, ErrPending
	}
	return false, nil
}

// Confirm marks key as seen for ttl: its event is durably stored. It
// replaces a reservation (or its absence, if the reservation lapsed).
func (r *Redis) Confirm(ctx context.Context, key string, ttl time.Duration) error {
	return r.confirmMark(ctx, r.c, r.keys.dedupe(key), ttl)
}

func (r *Redis) confirmMark(ctx context.Context, c redis.Cmdable, k string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if err := c.Set(ctx, k, "s", ttl).Err(); err != nil {
		return unavailable("confirm", err)
	}
	return nil
}

// Contains implements Dedupe.
func (r *Redis) Contains(ctx context.Context, key string) (bool, error) {
	return r.containsMark(ctx, r.keys.dedupe(key))
}

func (r *Redis) containsMark(ctx context.Context, k string) (bool, error) {
	n, err := r.c.Exists(ctx, k).Result()
	if err != nil {
		return false, unavailable("contains", err)
	}
	return n == 1, nil
}

// Remove implements Dedupe.
func (r *Redis) Remove(ctx context.Context, key string) error {
	return r.removeMark(ctx, r.keys.dedupe(key))
}

func (r *Redis) removeMark(ctx context.Context, k string) error {
	if err := r.c.Del(ctx, k).Err(); err != nil {
		return unavailable("remove", err)
	}
	return nil
}

// Interface guard.
var _ Dedupe = (*Redis)(nil)
