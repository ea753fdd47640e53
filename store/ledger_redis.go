package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLedger is the payments ledger on a Redis server that replicas
// share: a QR one replica created is found by every other, and each change
// is one Lua script, atomic on the server, so that of two replicas racing
// to change a record (a result and the expiry sweep) exactly one wins.
//
// Every key carries the hash tag {ledger}, so each script touches one
// slot and the layout works unchanged on a Redis Cluster. Under
// <prefix>{ledger}: (the store's prefix, then the tag):
//
//	rec:<id>         hash: the record (v version, id, mer, ref, st status,
//	                 m member, cr created and due in Unix ns, data)
//	created          sorted set, all scores 0: every record's member
//	                 (created as 19 digits, ":", id), in creation order
//	st:<status>      the same, for the records of one status
//	ref:<reference>  the same, for the records of one reference
//	due:<status>     sorted set: ids by due time (µs) of the records of one
//	                 status that have one
//	counts           hash: status -> number of records
//
// With at-rest encryption the record keeps its merchant, reference and
// data sealed (smer, sref, sdata, each with the record's id and field as
// additional data) and its reference's blind index (refx), which also
// names its reference index (ref:<refx>); see ledger_redis_seal.go.
//
// Nothing expires on its own: retention is Purge's.
type RedisLedger struct {
	r *Redis
	p string
}

// redisLedgerTag is the hash tag every ledger key carries.
const redisLedgerTag = "{ledger}"

// NewRedisLedger returns the ledger on r's server. Closing it leaves r
// open: the caller owns it.
func NewRedisLedger(r *Redis) *RedisLedger {
	return &RedisLedger{r: r, p: r.keys.prefix + redisLedgerTag + ":"}
}

func (l *RedisLedger) recKey(id string) string { return l.p + "rec:" + id }

// dueScore is a due time as the due index's score ("" when unset).
func dueScore(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

var ledgerInsertScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local P = ARGV[1]
redis.call('HSET', KEYS[1], 'v', 1, unpack(ARGV, 7))
redis.call('ZADD', P .. 'created', 0, ARGV[3])
redis.call('ZADD', P .. 'st:' .. ARGV[4], 0, ARGV[3])
if ARGV[5] ~= '' then redis.call('ZADD', P .. 'ref:' .. ARGV[5], 0, ARGV[3]) end
if ARGV[6] ~= '' then redis.call('ZADD', P .. 'due:' .. ARGV[4], ARGV[6], ARGV[2]) end
redis.call('HINCRBY', P .. 'counts', ARGV[4], 1)
return 1
`)

// Insert implements Ledger.
func (l *RedisLedger) Insert(ctx context.Context, rec LedgerRecord) (LedgerRecord, error) {
	if err := checkLedgerRecord(rec); err != nil {
		return LedgerRecord{}, err
	}
	mem := ledgerMember(rec.Created, rec.ID)
	sl := l.r.atRest.Sealer()
	args := []any{l.p, rec.ID, mem, rec.Status, ledgerRefName(sl, rec.Reference), dueScore(rec.Due),
		"id", rec.ID, "st", rec.Status, "m", mem, "cr", nanos(rec.Created), "due", nanos(rec.Due)}
	args = append(args, sealedLedgerFields(sl, rec)...)
	n, err := ledgerInsertScript.Run(ctx, l.r.c, []string{l.recKey(rec.ID)}, args...).Int()
	if err != nil {
		return LedgerRecord{}, unavailable("ledger insert", err)
	}
	if n == 0 {
		return LedgerRecord{}, ErrRecordExists
	}
	rec.Version = 1
	return rec, nil
}

// decodeLedgerHash reads one record hash (HGETALL's map), opening its
// sealed fields with sl.
func decodeLedgerHash(m map[string]string, sl *Sealer) (LedgerRecord, error) {
	var bad bool
	num := func(v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		bad = bad || err != nil
		return n
	}
	rec := LedgerRecord{
		ID: m["id"], Merchant: m["mer"], Reference: m["ref"], Status: m["st"],
		Created: fromUnixNano(num(m["cr"])), Due: fromUnixNano(num(m["due"])),
		Version: num(m["v"]), Data: []byte(m["data"]),
	}
	if bad || rec.ID == "" || rec.Version < 1 {
		return LedgerRecord{}, errCorruptRecord
	}
	if err := openLedgerFields(sl, &rec, m); err != nil {
		return LedgerRecord{}, err
	}
	return rec, nil
}

// Get implements Ledger.
func (l *RedisLedger) Get(ctx context.Context, id string) (LedgerRecord, error) {
	m, err := l.r.c.HGetAll(ctx, l.recKey(id)).Result()
	if err != nil {
		return LedgerRecord{}, unavailable("ledger get", err)
	}
	if len(m) == 0 {
		return LedgerRecord{}, ErrRecordNotFound
	}
	return decodeLedgerHash(m, l.r.atRest.Sealer())
}

// GetMany implements Ledger: one round trip for all of ids.
func (l *RedisLedger) GetMany(ctx context.Context, ids []string) ([]LedgerRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := l.r.c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, l.recKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("ledger get", err)
	}
	out := make([]LedgerRecord, 0, len(ids))
	sl := l.r.atRest.Sealer()
	for _, c := range cmds {
		if len(c.Val()) == 0 {
			continue // gone since it was listed
		}
		rec, err := decodeLedgerHash(c.Val(), sl)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// members reads up to n members m of the lex indexes keys with lo <= m <
// hi (see ledgerBounds), newest first: one index, or a reference's under
// each name it may have (see refIndexKeys), merged.
func (l *RedisLedger) members(ctx context.Context, keys []string, lo, hi string, n int) ([]string, error) {
	maxB, minB := "+", "-"
	if hi != "" {
		maxB = "(" + hi
	}
	if lo != "" {
		minB = "[" + lo
	}
	var all []string
	for _, key := range keys {
		ms, err := l.r.c.ZRevRangeByLex(ctx, key, &redis.ZRangeBy{Max: maxB, Min: minB, Count: int64(n)}).Result()
		if err != nil {
			return nil, unavailable("ledger list", err)
		}
		all = append(all, ms...)
	}
	if len(keys) > 1 {
		slices.Sort(all)
		all = slices.Compact(all)
		slices.Reverse(all)
		all = all[:min(len(all), n)]
	}
	return all, nil
}

func memberIDs(ms []string) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = memberID(m)
	}
	return ids
}

// ByReference implements Ledger.
func (l *RedisLedger) ByReference(ctx context.Context, ref string, max int) ([]LedgerRecord, error) {
	ms, err := l.members(ctx, l.refIndexKeys(ref), "", "", max)
	if err != nil {
		return nil, err
	}
	return l.GetMany(ctx, memberIDs(ms))
}

var ledgerUpdateScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'v', 'st', 'm', 'mer', 'ref', 'cr', 'smer', 'sref')
if not cur[1] then return {-1} end
if cur[1] ~= ARGV[3] then return {0} end
local P, id, old, new = ARGV[1], ARGV[2], cur[2], ARGV[4]
if old ~= new then
  redis.call('ZREM', P .. 'st:' .. old, cur[3])
  redis.call('ZADD', P .. 'st:' .. new, 0, cur[3])
  redis.call('HINCRBY', P .. 'counts', old, -1)
  redis.call('HINCRBY', P .. 'counts', new, 1)
end
redis.call('ZREM', P .. 'due:' .. old, id)
if ARGV[5] ~= '' then redis.call('ZADD', P .. 'due:' .. new, ARGV[5], id) end
local v = tonumber(cur[1]) + 1
redis.call('HSET', KEYS[1], 'v', v, 'st', new, 'due', ARGV[6], ARGV[8], ARGV[7])
redis.call('HDEL', KEYS[1], ARGV[9])
return {v, cur[4] or '', cur[5] or '', cur[6], cur[7] or '', cur[8] or ''}
`)

// Update implements Ledger: a compare and swap on the version, in one
// script.
func (l *RedisLedger) Update(ctx context.Context, rec LedgerRecord) (LedgerRecord, error) {
	if err := checkLedgerRecord(rec); err != nil {
		return LedgerRecord{}, err
	}
	sl := l.r.atRest.Sealer()
	data, field, other := any(rec.Data), "data", "sdata"
	if sl != nil {
		data, field, other = sl.Seal(ledgerFieldAAD(rec.ID, "data"), rec.Data), "sdata", "data"
	}
	reply, err := ledgerUpdateScript.Run(ctx, l.r.c, []string{l.recKey(rec.ID)},
		l.p, rec.ID, rec.Version, rec.Status, dueScore(rec.Due), nanos(rec.Due), data, field, other).Slice()
	if err != nil {
		return LedgerRecord{}, unavailable("ledger update", err)
	}
	var v int64
	if len(reply) > 0 {
		v, _ = reply[0].(int64)
	}
	switch {
	case v == -1:
		return LedgerRecord{}, ErrRecordNotFound
	case v == 0:
		return LedgerRecord{}, ErrConflict
	case v < 1 || len(reply) != 6:
		return LedgerRecord{}, unavailable("ledger update", fmt.Errorf("unexpected reply of %d values", len(reply)))
	}
	// The fields fixed at insert are the stored ones, whatever rec said.
	rec.Version = v
	str := func(x any) string { s, _ := x.(string); return s }
	if err := openLedgerFields(sl, &rec, map[string]string{"mer": str(reply[1]), "ref": str(reply[2]),
		"smer": str(reply[4]), "sref": str(reply[5])}); err != nil {
		return LedgerRecord{}, err
	}
	cr, _ := reply[3].(string)
	n, err := strconv.ParseInt(cr, 10, 64)
	if err != nil {
		return LedgerRecord{}, errCorruptRecord
	}
	rec.Created = fromUnixNano(n)
	return rec, nil
}

// Due implements Ledger.
func (l *RedisLedger) Due(ctx context.Context, status string, before time.Time, max int) ([]LedgerRecord, error) {
	ids, err := l.r.c.ZRangeByScore(ctx, l.p+"due:"+status, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(before.UnixMicro(), 10), Count: int64(max),
	}).Result()
	if err != nil {
		return nil, unavailable("ledger due", err)
	}
	recs, err := l.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	// Listed, then read: drop what changed in between.
	out := recs[:0]
	for _, rec := range recs {
		if rec.Status == status && !rec.Due.IsZero() && !rec.Due.After(before) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// List implements Ledger: it walks the narrowest index (the reference's,
// else the status's, else all records) and filters what that index does
// not.
func (l *RedisLedger) List(ctx context.Context, q LedgerQuery) (LedgerPage, error) {
	if err := checkLedgerQuery(q); err != nil {
		return LedgerPage{}, err
	}
	lo, hi, err := ledgerBounds(q)
	if err != nil {
		return LedgerPage{}, err
	}
	keys := []string{l.p + "created"}
	switch {
	case q.Reference != "":
		keys = l.refIndexKeys(q.Reference)
	case q.Status != "":
		keys = []string{l.p + "st:" + q.Status}
	}
	var page LedgerPage
	batch := q.Limit + 1
	for {
		// Each batch starts below the last member of the one before
		// (keyset paging): records added meanwhile cannot shift it.
		ms, err := l.members(ctx, keys, lo, hi, batch)
		if err != nil {
			return LedgerPage{}, err
		}
		recs, err := l.GetMany(ctx, memberIDs(ms))
		if err != nil {
			return LedgerPage{}, err
		}
		for _, rec := range recs {
			if q.Status != "" && rec.Status != q.Status {
				continue
			}
			if len(page.Records) == q.Limit {
				last := page.Records[q.Limit-1]
				page.Next = encodeCursor(ledgerMember(last.Created, last.ID))
				return page, nil
			}
			page.Records = append(page.Records, rec)
		}
		if len(ms) < batch {
			return page, nil
		}
		hi = ms[len(ms)-1]
	}
}

// Counts implements Ledger.
func (l *RedisLedger) Counts(ctx context.Context) (map[string]int, error) {
	m, err := l.r.c.HGetAll(ctx, l.p+"counts").Result()
	if err != nil {
		return nil, unavailable("ledger counts", err)
	}
	out := make(map[string]int, len(m))
	for s, v := range m {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			out[s] = n
		}
	}
	return out, nil
}

var ledgerDeleteScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'v', 'st', 'm', 'ref', 'refx')
if not f[1] then return -1 end
if f[1] ~= ARGV[3] then return 0 end
local P, id, m = ARGV[1], ARGV[2], f[3]
redis.call('ZREM', P .. 'created', m)
redis.call('ZREM', P .. 'st:' .. f[2], m)
local r = f[5] or f[4]
if r and r ~= '' then redis.call('ZREM', P .. 'ref:' .. r, m) end
redis.call('ZREM', P .. 'due:' .. f[2], id)
redis.call('HINCRBY', P .. 'counts', f[2], -1)
redis.call('DEL', KEYS[1])
return 1
`)

// Delete implements Ledger: a compare and swap on the version, in one
// script.
func (l *RedisLedger) Delete(ctx context.Context, id string, version int64) error {
	n, err := ledgerDeleteScript.Run(ctx, l.r.c, []string{l.recKey(id)}, l.p, id, version).Int()
	switch {
	case err != nil:
		return unavailable("ledger delete", err)
	case n == -1:
		return ErrRecordNotFound
	case n == 0:
		return ErrConflict
	}
	return nil
}

var ledgerPurgeScript = redis.NewScript(`
local P = ARGV[1]
local ms = redis.call('ZRANGEBYLEX', KEYS[1], '-', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(ms) do
  local id = string.sub(m, 21)
  local k = P .. 'rec:' .. id
  local f = redis.call('HMGET', k, 'st', 'ref', 'refx')
  if f[1] then
    redis.call('ZREM', P .. 'st:' .. f[1], m)
    local r = f[3] or f[2]
    if r and r ~= '' then redis.call('ZREM', P .. 'ref:' .. r, m) end
    redis.call('ZREM', P .. 'due:' .. f[1], id)
    redis.call('HINCRBY', P .. 'counts', f[1], -1)
    redis.call('DEL', k)
  end
  redis.call('ZREM', KEYS[1], m)
end
return #ms
`)

// Purge implements Ledger.
func (l *RedisLedger) Purge(ctx context.Context, before time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, errors.New("ledger: purge needs a positive max")
	}
	n, err := ledgerPurgeScript.Run(ctx, l.r.c, []string{l.p + "created"}, l.p, ledgerTimeBound(before), max).Int()
	if err != nil {
		return 0, unavailable("ledger purge", err)
	}
	return n, nil
}

// Close implements Ledger; the connection stays open (its owner closes
// it).
func (l *RedisLedger) Close() error { return nil }

// Interface guard.
var _ Ledger = (*RedisLedger)(nil)
