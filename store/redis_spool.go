package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RedisSpool is a Spool (and a Dedupe) on a Redis server that several
// replicas share: an event one replica acknowledged can be delivered by any
// of them, and the events a crashed replica had claimed are handed to the
// others once its heartbeat stops (see redis_spool_lease.go), well before
// their lease would end.
//
// Layout under <prefix><name>: (the Redis store's prefix, then the spool's
// name; <prefix>{<name>}: on a Cluster, so that every key of the spool is in
// one slot), each operation one Lua script, atomic on the server:
//
//	due           sorted set: pending event ids by due time (µs; a claimed
//	              event's score is the end of its lease)
//	recv          sorted set: pending event ids by receipt time (µs)
//	dead          sorted set: dead-letter ids (score 0: listed in id order)
//	deadt         sorted set: dead-letter ids by dead time (µs), for Purge
//	done          sorted set: delivered ids kept in the history, by
//	              delivery time (µs)
//	hist          sorted set: every event's id (score 0: in id order),
//	              whatever its state, for Events
//	histv         string: set once hist and deadt hold the events an
//	              earlier release stored (see upgradeHistory)
//	ev:<id>       hash: the event's fields, its state (p pending, v
//	              delivered, d dead) and owner
//	claims:<o>    set: the ids replica o has claimed
//	owners        sorted set: replica ids by last heartbeat (server ms)
//
// With at-rest encryption the hash holds the payment part sealed in one
// field (seal) and the reference's blind index (refx) instead of ref,
// code and body (see spool_seal.go); the other fields stay readable, so
// the scripts schedule, list and dead-letter an event they cannot decrypt.
//
// The de-duplication marks are the Redis store's own keys on one server
// (redisKeys), so `store` and `spool` on one server agree, and the
// spool's own keys (…:dedupe:<key>) on a Cluster; either way a Put writes
// its event's mark in the same script as the event: never a mark without
// its event.
//
// Durability is the server's: Put returns once the primary has the event,
// which survives a Redis restart only with appendonly yes (and a crash of
// its machine only with appendfsync always), and a failover only once a
// replica has it too: replication is asynchronous, so an event acknowledged
// just before the primary fails can be missing on the replica promoted in
// its place. WithMinReplicas returns a view whose Put waits for that. The
// spool logs a warning when a primary has appendonly off. The scripts
// compute the names of some keys they touch; on a Cluster every one of them
// carries the spool's hash tag, so they are all in the script's slot.
type RedisSpool struct {
	r     *Redis
	name  string
	p     string // key prefix of this spool
	owner string
	hb    time.Duration
	log   *zap.Logger

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	closed   bool
	closeMu  sync.Mutex

	// unsynced holds, per event, the last Complete, Retry or Bury the
	// server missed (it was down); the heartbeat applies them when it
	// returns, so a delivered event is not delivered again and a failed
	// one is not held until its lease ends.
	unsyncedMu sync.Mutex
	unsynced   map[string]unsyncedWrite
	seq        uint64

	// held is what this replica's deliverer claimed and has not finished;
	// lostClaim is set when a Claim may have taken events its reply does
	// not name: it failed after it may have run on the server (its reply
	// lost), or it ran on a Cluster, whose client runs a command again
	// when a reply times out or its connection drops (the reply is then
	// the last run's). The heartbeat then hands back the claims
	// the deliverer does not hold (see reconcile), rather than leave them
	// hidden until their lease ends. Claims hold heldMu for reading,
	// reconcile for writing, so that no claim is in the air while it
	// compares.
	heldMu    sync.RWMutex
	held      map[string]struct{}
	lostClaim atomic.Bool
}

type unsyncedWrite struct {
	apply func(context.Context) error
	seq   uint64 // tells a newer write for the same event from this one
}

// RedisSpoolOptions tune NewRedisSpool.
type RedisSpoolOptions struct {
	// Name namespaces the spool's keys under the store's prefix ("spool"
	// when empty). Replicas that share a spool use the same name.
	Name string

	// Heartbeat is how long a replica may go silent before the events it
	// claimed are handed to the others; 15s when zero. It beats every
	// third of that.
	Heartbeat time.Duration

	// Logger receives take-overs and the durability warning; nil: none.
	Logger *zap.Logger
}

// NewRedisSpool returns the spool named o.Name on r's server and starts its
// heartbeat. Closing the spool leaves r open: the caller owns it.
func NewRedisSpool(ctx context.Context, r *Redis, o RedisSpoolOptions) (*RedisSpool, error) {
	if o.Name == "" {
		o.Name = "spool"
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if strings.ContainsAny(o.Name, "{}") {
		return nil, errors.New("spool: the name of a Redis spool must not contain { or }")
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	s := &RedisSpool{
		r: r, name: o.Name, p: r.keys.spool(o.Name), owner: hex.EncodeToString(id), hb: o.Heartbeat, log: o.Logger,
		stop: make(chan struct{}), done: make(chan struct{}), unsynced: make(map[string]unsyncedWrite),
		held: make(map[string]struct{}),
	}
	r.checkDurability(ctx, s.log)
	if err := s.upgradeHistory(ctx); err != nil {
		// The history lists what it can; pending events are unaffected.
		s.log.Warn("could not add the events of an earlier release to the spool's history index", zap.Error(err))
	}
	go s.beat()
	return s, nil
}

// sealer is the at-rest Sealer in use (nil: plain).
func (s *RedisSpool) sealer() *Sealer { return s.r.atRest.Sealer() }

// Name is the spool's name on its server.
func (s *RedisSpool) Name() string { return s.name }

// Store is the Redis store the spool lives on.
func (s *RedisSpool) Store() *Redis { return s.r }

// Owner is this replica's id in the spool (heartbeats, claims).
func (s *RedisSpool) Owner() string { return s.owner }

func (s *RedisSpool) evKey(id string) string { return s.p + "ev:" + id }

// markKey names the de-duplication mark of key (see redisKeys).
func (s *RedisSpool) markKey(key string) string { return s.r.keys.spoolDedupe(s.name, key) }

func micros(t time.Time) int64 { return t.UnixMicro() }

func nanos(t time.Time) string { return strconv.FormatInt(unixNano(t), 10) }

// redisPutScript stores an event (and, with KEYS[5], its de-duplication
// mark). ARGV[5] names the Put call: run again (a Cluster client's retry),
// the script finds its own event and succeeds rather than report it as an
// existing one.
var redisPutScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'ptok') == ARGV[5] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[4], 0, ARGV[3])
if KEYS[5] and tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[5], 's', 'PX', ARGV[4])
end
return 1
`)

// Put implements Spool. With ev.DedupeKey set, the key is marked seen for
// DedupeUntil-Received in the same script as the event.
func (s *RedisSpool) Put(ctx context.Context, ev SpoolEvent) error {
	if err := s.checkPut(ctx, ev); err != nil {
		return err
	}
	keys, args := s.putArgs(ev, true, ev.NextAttempt)
	return s.put(ctx, s.r.c, keys, args)
}

func (s *RedisSpool) checkPut(ctx context.Context, ev SpoolEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(ev.ID); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrClosed
	}
	return nil
}

// putArgs are redisPutScript's keys and arguments for ev; withMark adds its
// de-duplication mark. The event is due (claimable) at due, normally its
// NextAttempt.
func (s *RedisSpool) putArgs(ev SpoolEvent, withMark bool, due time.Time) ([]string, []any) {
	keys := []string{s.evKey(ev.ID), s.p + "due", s.p + "recv", s.p + "hist"}
	var ttl int64
	if ev.DedupeKey != "" && withMark {
		keys = append(keys, s.markKey(ev.DedupeKey))
		ttl = ev.DedupeUntil.Sub(ev.Received).Milliseconds()
	}
	args := []any{micros(due), micros(ev.Received), ev.ID, ttl, callID(),
		"state", "p", "id", ev.ID, "action", ev.Action}
	if sealed, refBlind := sealPayment(s.sealer(), &ev); sealed != nil {
		args = append(args, "seal", sealed, "refx", refBlind)
	} else {
		args = append(args, "ref", ev.Reference, "code", ev.ActivationCode, "body", ev.Body)
	}
	args = append(args, "recv", nanos(ev.Received), "recvus", micros(ev.Received), "from", nanos(ev.RetryFrom),
		"attempts", ev.Attempts, "next", nanos(ev.NextAttempt), "nextus", micros(ev.NextAttempt),
		"lasterr", ev.LastError, "dead", "0", "dkey", ev.DedupeKey, "duntil", nanos(ev.DedupeUntil), "owner", "",
		"src", ev.Source, "recon", ev.Reconciliation)
	args = append(args, "ptok", args[4])
	return keys, args
}

func (s *RedisSpool) put(ctx context.Context, c redis.Scripter, keys []string, args []any) error {
	n, err := redisPutScript.Run(ctx, c, keys, args...).Int()
	if err != nil {
		return unavailable("spool put", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

var redisClaimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local k = ARGV[5] .. id
  if redis.call('HGET', k, 'state') == 'p' then
    local prev = redis.call('HGET', k, 'owner')
    if prev and prev ~= '' and prev ~= ARGV[4] then redis.call('SREM', ARGV[6] .. prev, id) end
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('HSET', k, 'owner', ARGV[4])
    redis.call('SADD', KEYS[2], id)
    out[#out + 1] = redis.call('HGETALL', k)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`)

// Claim implements Spool.
func (s *RedisSpool) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]SpoolEvent, error) {
	if lease <= 0 || max <= 0 {
		return nil, errors.New("spool: claim needs a positive lease and max")
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	s.heldMu.RLock()
	defer s.heldMu.RUnlock()
	reply, err := redisClaimScript.Run(ctx, s.r.c, []string{s.p + "due", s.p + "claims:" + s.owner},
		micros(now), micros(now.Add(lease)), max, s.owner, s.p+"ev:", s.p+"claims:").Slice()
	if (err != nil && !isDialError(err)) || s.r.target.Mode == RedisCluster {
		s.lostClaim.Store(true) // it may have claimed events nobody here knows of
	}
	if err != nil {
		return nil, unavailable("spool claim", err)
	}
	evs, err := decodeRedisEvents(reply, s.sealer(), true)
	s.unsyncedMu.Lock() // guards held's entries against finish
	for _, ev := range evs {
		s.held[ev.ID] = struct{}{}
	}
	s.unsyncedMu.Unlock()
	return evs, err
}

// NextDue implements Spool.
func (s *RedisSpool) NextDue(ctx context.Context) (time.Time, bool, error) {
	z, err := s.r.c.ZRangeWithScores(ctx, s.p+"due", 0, 0).Result()
	if err != nil {
		return time.Time{}, false, unavailable("spool next due", err)
	}
	if len(z) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(int64(z[0].Score)).UTC(), true, nil
}

// redisRelease (a Lua fragment) drops the claim on the event in k, if any.
const redisRelease = `
local function release(k, id, claims)
  local o = redis.call('HGET', k, 'owner')
  if o and o ~= '' then redis.call('SREM', claims .. o, id) end
  redis.call('HSET', k, 'owner', '')
end
`

var redisCompleteScript = redis.NewScript(redisRelease + `
if redis.call('HGET', KEYS[1], 'state') ~= 'p' then return 0 end
release(KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
`)

// Complete implements Spool.
func (s *RedisSpool) Complete(ctx context.Context, id string) error {
	return s.finish(ctx, id, func(ctx context.Context) error {
		n, err := redisCompleteScript.Run(ctx, s.r.c, []string{s.evKey(id), s.p + "due", s.p + "recv", s.p + "hist"}, id, s.p+"claims:").Int()
		return s.result("complete", n, err)
	})
}

var redisArchiveScript = redis.NewScript(redisRelease + `
if redis.call('HGET', KEYS[1], 'state') ~= 'p' then return 0 end
release(KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'v', 'done', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 1
`)

// Archive implements Spool.
func (s *RedisSpool) Archive(ctx context.Context, id string, at time.Time) error {
	return s.finish(ctx, id, func(ctx context.Context) error {
		n, err := redisArchiveScript.Run(ctx, s.r.c, []string{s.evKey(id), s.p + "due", s.p + "recv", s.p + "done"},
			id, s.p+"claims:", nanos(at), micros(at)).Int()
		return s.result("archive", n, err)
	})
}

// finish applies one of the writes that end an attempt (Complete, Retry,
// Bury). When the server cannot be reached, the write is kept and applied
// again by the heartbeat once it answers.
func (s *RedisSpool) finish(ctx context.Context, id string, op func(context.Context) error) error {
	err := op(ctx)
	s.unsyncedMu.Lock()
	delete(s.held, id)
	if errors.Is(err, ErrUnavailable) {
		s.seq++
		s.unsynced[id] = unsyncedWrite{apply: op, seq: s.seq}
	} else {
		delete(s.unsynced, id)
	}
	s.unsyncedMu.Unlock()
	return err
}

// resync applies the writes the server missed; it returns how many it
// applied.
func (s *RedisSpool) resync(ctx context.Context) int {
	s.unsyncedMu.Lock()
	writes := make(map[string]unsyncedWrite, len(s.unsynced))
	for id, w := range s.unsynced {
		writes[id] = w
	}
	s.unsyncedMu.Unlock()
	applied := 0
	for id, w := range writes {
		err := w.apply(ctx)
		if errors.Is(err, ErrUnavailable) {
			return applied
		}
		s.unsyncedMu.Lock()
		if cur, ok := s.unsynced[id]; ok && cur.seq == w.seq {
			delete(s.unsynced, id)
		}
		s.unsyncedMu.Unlock()
		if err == nil {
			applied++
		}
	}
	return applied
}

var redisRetryScript = redis.NewScript(redisRelease + `
if redis.call('HGET', KEYS[1], 'state') ~= 'p' then return 0 end
release(KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'attempts', ARGV[3], 'next', ARGV[4], 'nextus', ARGV[5], 'lasterr', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
return 1
`)

// Retry implements Spool.
func (s *RedisSpool) Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return s.finish(ctx, id, func(ctx context.Context) error {
		n, err := redisRetryScript.Run(ctx, s.r.c, []string{s.evKey(id), s.p + "due"},
			id, s.p+"claims:", attempts, nanos(next), micros(next), lastErr).Int()
		return s.result("retry", n, err)
	})
}

var redisBuryScript = redis.NewScript(redisRelease + `
if redis.call('HGET', KEYS[1], 'state') ~= 'p' then return 0 end
release(KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'd', 'attempts', ARGV[3], 'dead', ARGV[4], 'lasterr', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
return 1
`)

// Bury implements Spool.
func (s *RedisSpool) Bury(ctx context.Context, id string, attempts int, at time.Time, lastErr string) error {
	return s.finish(ctx, id, func(ctx context.Context) error {
		n, err := redisBuryScript.Run(ctx, s.r.c, []string{s.evKey(id), s.p + "due", s.p + "recv", s.p + "dead", s.p + "deadt"},
			id, s.p+"claims:", attempts, nanos(at), lastErr, micros(at)).Int()
		return s.result("bury", n, err)
	})
}

func (s *RedisSpool) result(op string, n int, err error) error {
	if err != nil {
		return unavailable("spool "+op, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

var redisDeadScript = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = redis.call('HGETALL', ARGV[2] .. id) end
return out
`)

// DeadLetters implements Spool.
func (s *RedisSpool) DeadLetters(ctx context.Context, max int) ([]SpoolEvent, error) {
	if max <= 0 {
		return nil, nil
	}
	reply, err := redisDeadScript.Run(ctx, s.r.c, []string{s.p + "dead"}, max, s.p+"ev:").Slice()
	if err != nil {
		return nil, unavailable("spool dead letters", err)
	}
	return decodeRedisEvents(reply, s.sealer(), true)
}

var redisReplayScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'd' and st ~= 'v' then return false end
redis.call('HSET', KEYS[1], 'state', 'p', 'dead', '0', 'done', '0', 'from', ARGV[2], 'next', ARGV[2], 'nextus', ARGV[3], 'owner', '')
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'recvus'), ARGV[1])
return redis.call('HGETALL', KEYS[1])
`)

// Replay implements Spool.
func (s *RedisSpool) Replay(ctx context.Context, id string, now time.Time) (SpoolEvent, error) {
	reply, err := redisReplayScript.Run(ctx, s.r.c,
		[]string{s.evKey(id), s.p + "due", s.p + "recv", s.p + "dead", s.p + "deadt", s.p + "done"},
		id, nanos(now), micros(now)).Slice()
	if errors.Is(err, redis.Nil) {
		return SpoolEvent{}, ErrNotFound
	}
	if err != nil {
		return SpoolEvent{}, unavailable("spool replay", err)
	}
	return decodeRedisEvent(reply, s.sealer(), true)
}

// redisStatsScript counts the pending events, dead letters and delivered
// events kept, and finds the oldest pending receipt (µs, or false): one
// command, so that a Cluster client routes (and re-routes) it like any
// other.
var redisStatsScript = redis.NewScript(`
local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), oldest[2] or false, redis.call('ZCARD', KEYS[4])}
`)

// Stats implements Spool.
func (s *RedisSpool) Stats(ctx context.Context) (SpoolStats, error) {
	reply, err := redisStatsScript.Run(ctx, s.r.c, []string{s.p + "due", s.p + "dead", s.p + "recv", s.p + "done"}).Slice()
	if err != nil {
		return SpoolStats{}, unavailable("spool stats", err)
	}
	if len(reply) != 4 {
		return SpoolStats{}, unavailable("spool stats", fmt.Errorf("unexpected reply of %d values", len(reply)))
	}
	pending, _ := reply[0].(int64)
	dead, _ := reply[1].(int64)
	delivered, _ := reply[3].(int64)
	st := SpoolStats{Pending: int(pending), DeadLetters: int(dead), Delivered: int(delivered)}
	if v, ok := reply[2].(string); ok {
		us, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return SpoolStats{}, unavailable("spool stats", err)
		}
		st.OldestPending = time.UnixMicro(int64(us)).UTC()
	}
	return st, nil
}

// Add implements Dedupe (the store's reservation; Put confirms it).
func (s *RedisSpool) Add(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return s.r.reserveMark(ctx, s.markKey(key), ttl)
}

// Contains implements Dedupe.
func (s *RedisSpool) Contains(ctx context.Context, key string) (bool, error) {
	return s.r.containsMark(ctx, s.markKey(key))
}

// Remove implements Dedupe.
func (s *RedisSpool) Remove(ctx context.Context, key string) error {
	return s.r.removeMark(ctx, s.markKey(key))
}

// decodeRedisEvents turns a list of HGETALL replies into events, their
// payment part opened with sl when open is set.
func decodeRedisEvents(reply []any, sl *Sealer, open bool) ([]SpoolEvent, error) {
	evs := make([]SpoolEvent, 0, len(reply))
	for _, r := range reply {
		fields, ok := r.([]any)
		if !ok {
			return nil, fmt.Errorf("spool: unexpected reply %T", r)
		}
		if len(fields) == 0 {
			continue // deleted between the index and the read
		}
		ev, err := decodeRedisEvent(fields, sl, open)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// decodeRedisEvent reads one event hash (field, value, field, value...).
func decodeRedisEvent(fields []any, sl *Sealer, open bool) (SpoolEvent, error) {
	var (
		ev       SpoolEvent
		sealed   []byte
		refBlind string
	)
	if len(fields)%2 != 0 {
		return ev, errCorruptRecord
	}
	var bad bool
	num := func(v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		bad = bad || err != nil
		return n
	}
	for i := 0; i < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "id":
			ev.ID = v
		case "action":
			ev.Action = v
		case "ref":
			ev.Reference = v
		case "code":
			ev.ActivationCode = v
		case "body":
			ev.Body = []byte(v)
		case "recv":
			ev.Received = fromUnixNano(num(v))
		case "from":
			ev.RetryFrom = fromUnixNano(num(v))
		case "next":
			ev.NextAttempt = fromUnixNano(num(v))
		case "dead":
			ev.DeadAt = fromUnixNano(num(v))
		case "done":
			ev.DeliveredAt = fromUnixNano(num(v))
		case "seal":
			sealed = []byte(v)
		case "refx":
			refBlind = v
		case "duntil":
			ev.DedupeUntil = fromUnixNano(num(v))
		case "attempts":
			ev.Attempts = int(num(v))
		case "lasterr":
			ev.LastError = v
		case "dkey":
			ev.DedupeKey = v
		case "src":
			ev.Source = v
		case "recon":
			ev.Reconciliation = v
		}
	}
	if bad || ev.ID == "" || (sealed != nil && len(sealed) == 0) {
		return SpoolEvent{}, errCorruptRecord
	}
	if sealed != nil {
		if open {
			openPayment(sl, &ev, sealed, refBlind)
		} else {
			ev.payment = storedPayment{sealed: sealed, refBlind: refBlind}
		}
	}
	return ev, nil
}

// Interface guards.
var (
	_ Spool  = (*RedisSpool)(nil)
	_ Dedupe = (*RedisSpool)(nil)
)
