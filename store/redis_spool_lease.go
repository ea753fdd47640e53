package store

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Leases and heartbeats. A claimed event carries its claimant's id, and is
// hidden until the lease the claimant asked for ends (the deliverer asks
// for forward_timeout plus a minute). A replica that crashes mid-delivery
// would hold its events that long; so every replica also beats (records
// the server's time in the owners set) every third of the Heartbeat, and
// each beat hands the claims of owners silent for a whole Heartbeat back to
// the queue at their own due times. A replica that closes cleanly hands
// back its claims at once. Heartbeats use the server's clock (TIME), so
// replicas with skewed clocks agree on who went silent.

// redisHandBack (a Lua fragment) hands the claim of owner on the event id
// (its hash in k) back to the queue: the event loses its owner and, while
// pending, is due again at its own next attempt in due (the sorted set of
// due times). It returns 1 when it re-queued the event, else 0 (another
// owner holds it now, or it is no longer pending). The caller drops id
// from owner's claims set. Every script that hands claims back uses it:
// the heartbeat's take-over of silent owners, a replica's farewell, and
// the reconciliation after a lost claim.
const redisHandBack = `
local function handBack(k, id, owner, due)
  if redis.call('HGET', k, 'owner') ~= owner then return 0 end
  redis.call('HSET', k, 'owner', '')
  if redis.call('HGET', k, 'state') ~= 'p' then return 0 end
  redis.call('ZADD', due, redis.call('HGET', k, 'nextus'), id)
  return 1
end
`

// redisBeatScript records this owner's heartbeat and releases the claims of
// every owner (this one too, when ARGV[3] is "self") silent for ARGV[2] ms.
// It returns how many events it handed back.
var redisBeatScript = redis.NewScript(redisHandBack + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local silent
if ARGV[3] == 'self' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  silent = {ARGV[1]}
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  silent = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
end
local n = 0
for _, o in ipairs(silent) do
  local claims = ARGV[4] .. o
  for _, id in ipairs(redis.call('SMEMBERS', claims)) do
    n = n + handBack(ARGV[5] .. id, id, o, KEYS[2])
  end
  redis.call('DEL', claims)
  if o ~= ARGV[1] then redis.call('ZREM', KEYS[1], o) end
end
return n
`)

// beatOnce sends one heartbeat (or, with self, the farewell that hands back
// this replica's claims) and returns how many events it handed back.
func (s *RedisSpool) beatOnce(ctx context.Context, self bool) (int, error) {
	mode := "beat"
	if self {
		mode = "self"
	}
	n, err := redisBeatScript.Run(ctx, s.r.c, []string{s.p + "owners", s.p + "due"},
		s.owner, s.hb.Milliseconds(), mode, s.p+"claims:", s.p+"ev:").Int()
	if err != nil {
		return 0, unavailable("spool heartbeat", err)
	}
	return n, nil
}

func (s *RedisSpool) beat() {
	defer close(s.done)
	every := s.hb / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := s.beatOnce(ctx, false)
		if err == nil && n > 0 {
			s.log.Warn("took over the events another replica had claimed before it went silent",
				zap.Int("events", n), zap.Duration("heartbeat", s.hb))
		}
		if err == nil {
			if n := s.resync(ctx); n > 0 {
				s.log.Info("applied the spool writes the Redis server missed while it was down", zap.Int("writes", n))
			}
			if n, err := s.reconcile(ctx); err == nil && n > 0 {
				s.log.Warn("handed back events a claim had taken before its answer was lost", zap.Int("events", n))
			}
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// redisReconcileScript hands back this owner's claims (KEYS[1]) on the
// events its deliverer does not hold (ARGV[3]...): those a claim whose
// answer was lost had taken. It returns how many it handed back.
var redisReconcileScript = redis.NewScript(redisHandBack + `
local held = {}
for i = 3, #ARGV do held[ARGV[i]] = true end
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not held[id] then
    n = n + handBack(ARGV[2] .. id, id, ARGV[1], KEYS[2])
    redis.call('SREM', KEYS[1], id)
  end
end
return n
`)

// reconcile, after a claim that may have taken events its reply does not
// name (its answer was lost; on a Cluster, any claim, which the client may
// have run more than once), hands back the events it may have claimed:
// every claim of this replica that its deliverer does not hold. Without it
// they would wait for their lease to end.
func (s *RedisSpool) reconcile(ctx context.Context) (int, error) {
	if !s.lostClaim.Load() {
		return 0, nil
	}
	s.heldMu.Lock() // no claim in the air
	defer s.heldMu.Unlock()
	s.unsyncedMu.Lock()
	if len(s.unsynced) > 0 {
		// A delivered event's Complete is still to be applied: handing
		// its claim back first would deliver it again.
		s.unsyncedMu.Unlock()
		return 0, nil
	}
	args := make([]any, 0, len(s.held)+2)
	args = append(args, s.owner, s.p+"ev:")
	for id := range s.held {
		args = append(args, id)
	}
	s.unsyncedMu.Unlock()
	n, err := redisReconcileScript.Run(ctx, s.r.c, []string{s.p + "claims:" + s.owner, s.p + "due"}, args...).Int()
	if err != nil {
		return 0, unavailable("spool reconcile", err)
	}
	s.lostClaim.Store(false)
	return n, nil
}

// stopBeating ends the heartbeat without handing anything back (a crash,
// for tests; Close uses it first).
func (s *RedisSpool) stopBeating() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

func (s *RedisSpool) isClosed() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	return s.closed
}

// Close implements Spool: it stops the heartbeat and hands this replica's
// claims back to the queue, so the others deliver them at once. Pending
// events stay in Redis; the Redis connection stays open.
func (s *RedisSpool) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.stopBeating()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.beatOnce(ctx, true)
	return err
}
