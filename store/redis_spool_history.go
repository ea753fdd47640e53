package store

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis spool's history: Archive keeps a delivered event's hash (state
// v) and lists it in done; hist lists every event by id, for Events and
// for the re-encryption pass; Purge drops what retention no longer keeps.

// redisUpgradeHistoryScript adds the events stored by a release without
// the history (pending ones in recv, dead letters in dead) to hist, and
// the dead letters to deadt, once (KEYS[1] marks it done).
var redisUpgradeHistoryScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZUNIONSTORE', KEYS[2], 3, KEYS[2], KEYS[3], KEYS[4], 'WEIGHTS', 0, 0, 0)
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local d = redis.call('HGET', ARGV[1] .. id, 'dead')
  if d and not redis.call('ZSCORE', KEYS[5], id) then
    redis.call('ZADD', KEYS[5], math.floor(tonumber(d) / 1000), id)
  end
end
redis.call('SET', KEYS[1], '1')
return 1
`)

// upgradeHistory indexes the events an earlier release stored (once per
// spool).
func (s *RedisSpool) upgradeHistory(ctx context.Context) error {
	err := redisUpgradeHistoryScript.Run(ctx, s.r.c,
		[]string{s.p + "histv", s.p + "hist", s.p + "recv", s.p + "dead", s.p + "deadt"}, s.p+"ev:").Err()
	if err != nil {
		return unavailable("spool history upgrade", err)
	}
	return nil
}

// eventMetaFields are the hash fields Events reads: everything but the
// plain body.
var eventMetaFields = []string{"id", "action", "ref", "code", "seal", "refx", "recv", "from", "next", "dead", "done",
	"attempts", "lasterr", "src", "recon", "dkey", "duntil"}

// redisEventBatch is how many events Events reads per round trip.
const redisEventBatch = 200

// Events implements Spool.
func (s *RedisSpool) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	if err := q.Check(); err != nil {
		return EventPage{}, err
	}
	sl := s.sealer()
	hi := "+"
	if q.Cursor != "" {
		hi = "(" + q.Cursor
	}
	var (
		page    EventPage
		last    string
		scanned int
	)
	for scanned < MaxEventScan {
		n := min(redisEventBatch, MaxEventScan-scanned)
		ids, err := s.r.c.ZRevRangeByLex(ctx, s.p+"hist", &redis.ZRangeBy{Max: hi, Min: "-", Count: int64(n)}).Result()
		if err != nil {
			return EventPage{}, unavailable("spool events", err)
		}
		evs, err := s.readMeta(ctx, ids)
		if err != nil {
			return EventPage{}, err
		}
		for i, ev := range evs {
			scanned++
			if ev != nil && q.selects(sl, ev) {
				if len(page.Events) == q.Limit {
					page.Next = page.Events[q.Limit-1].ID
					return page, nil
				}
				page.Events = append(page.Events, listed(sl, *ev))
			}
			last = ids[i]
		}
		if len(ids) < n {
			return page, nil
		}
		hi = "(" + ids[len(ids)-1]
	}
	page.Next = last
	return page, nil
}

// readMeta reads the events ids (their payment part closed, no plain
// body) in one round trip; an id whose hash is gone reads as nil.
func (s *RedisSpool) readMeta(ctx context.Context, ids []string) ([]*SpoolEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.r.c.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.evKey(id), eventMetaFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("spool events", err)
	}
	out := make([]*SpoolEvent, len(ids))
	for i, c := range cmds {
		vals := c.Val()
		if len(vals) == 0 || vals[0] == nil {
			continue // completed or purged since it was listed
		}
		pairs := make([]any, 0, 2*len(vals))
		for j, v := range vals {
			if v != nil {
				pairs = append(pairs, eventMetaFields[j], v)
			}
		}
		ev, err := decodeRedisEvent(pairs, nil, false)
		if err != nil {
			return nil, err
		}
		out[i] = &ev
	}
	return out, nil
}

var redisPurgeScript = redis.NewScript(`
local n, max = 0, tonumber(ARGV[4])
if ARGV[2] ~= '' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, max)) do
    local k = ARGV[1] .. id
    if redis.call('HGET', k, 'state') == 'v' then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[4], id)
      n = n + 1
    end
    redis.call('ZREM', KEYS[1], id)
  end
end
if ARGV[3] ~= '' and n < max then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3], 'LIMIT', 0, max - n)) do
    local k = ARGV[1] .. id
    if redis.call('HGET', k, 'state') == 'd' then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[3], id)
      redis.call('ZREM', KEYS[4], id)
      n = n + 1
    end
    redis.call('ZREM', KEYS[2], id)
  end
end
return n
`)

// Purge implements Spool.
func (s *RedisSpool) Purge(ctx context.Context, deliveredBefore, deadBefore time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	bound := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(micros(t), 10)
	}
	n, err := redisPurgeScript.Run(ctx, s.r.c, []string{s.p + "done", s.p + "deadt", s.p + "dead", s.p + "hist"},
		s.p+"ev:", bound(deliveredBefore), bound(deadBefore), max).Int()
	if err != nil {
		return 0, unavailable("spool purge", err)
	}
	return n, nil
}
