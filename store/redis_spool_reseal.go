package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// redisResealScript rewrites an event's payment part sealed anew, on the
// condition that it is still what the pass read: the same sealed value
// (ARGV[1] 's'), or the same plain body with no sealed value (ARGV[1]
// 'p'); the payment part never changes otherwise. It returns 1 when it
// rewrote the event, 0 when the event changed or went.
var redisResealScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 's' then
  if redis.call('HGET', KEYS[1], 'seal') ~= ARGV[2] then return 0 end
else
  if redis.call('HEXISTS', KEYS[1], 'seal') == 1 or redis.call('HGET', KEYS[1], 'body') ~= ARGV[2] then return 0 end
end
redis.call('HDEL', KEYS[1], 'ref', 'code', 'body')
redis.call('HSET', KEYS[1], 'seal', ARGV[3], 'refx', ARGV[4])
return 1
`)

// Reseal implements Resealer for the Redis spool: it walks hist in id
// order (the cursor is the last id examined) and rewrites each event that
// needs it with one script.
func (s *RedisSpool) Reseal(ctx context.Context, sl *Sealer, cursor string, max int) (string, ResealStats, error) {
	lo := "-"
	if cursor != "" {
		lo = "(" + cursor
	}
	var st ResealStats
	ids, err := s.r.c.ZRangeByLex(ctx, s.p+"hist", &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(max)}).Result()
	if err != nil {
		return cursor, st, unavailable("spool reseal", err)
	}
	pipe := s.r.c.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.evKey(id), "id", "seal", "refx", "ref", "code", "body")
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return cursor, st, unavailable("spool reseal", err)
		}
	}
	for i, id := range ids {
		v := cmds[i].Val()
		if len(v) != 6 || v[0] == nil {
			continue // gone since it was listed
		}
		st.Checked++
		str := func(x any) string { s, _ := x.(string); return s }
		ev := SpoolEvent{ID: id}
		mode, old := "p", str(v[5])
		if sealed := str(v[1]); sealed != "" {
			if sl.current([]byte(sealed)) {
				continue
			}
			if openPayment(sl, &ev, []byte(sealed), str(v[2])) != nil {
				st.Undecryptable++
				continue
			}
			mode, old = "s", sealed
		} else {
			ev.Reference, ev.ActivationCode, ev.Body = str(v[3]), str(v[4]), []byte(str(v[5]))
		}
		sealed, refBlind := sealPayment(sl, &ev)
		n, err := redisResealScript.Run(ctx, s.r.c, []string{s.evKey(id)}, mode, old, sealed, refBlind).Int()
		if err != nil {
			return cursor, st, unavailable("spool reseal", err)
		}
		if n == 1 {
			st.Resealed++
		} else {
			st.Raced++
		}
		cursor = id
	}
	if len(ids) < max {
		return "", st, nil
	}
	return ids[len(ids)-1], st, nil
}

// Interface guard.
var _ Resealer = (*RedisSpool)(nil)
