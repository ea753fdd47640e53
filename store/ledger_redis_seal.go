package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The Redis ledger at rest: a record's merchant, reference and data are
// sealed field by field (data changes on every Update, the other two
// never), and its reference index is named by the reference's blind index.
// A record written plain keeps mer, ref and data (and ref:<reference>)
// until the re-encryption pass rewrites it; reads take either form.

// ledgerFieldAAD is the additional data of a sealed ledger field.
func ledgerFieldAAD(id, field string) string { return ledgerAAD(id) + "\x00" + field }

// ledgerRefName names a reference's index: the blind index when sealing.
func ledgerRefName(sl *Sealer, ref string) string {
	if sl == nil || ref == "" {
		return ref
	}
	return sl.Blind(ref)
}

// refIndexKeys are the indexes that may list records of reference ref:
// its blind index under every key, and the plain one (records written
// before the keys, until the pass moves them).
func (l *RedisLedger) refIndexKeys(ref string) []string {
	sl := l.r.atRest.Sealer()
	if sl == nil {
		return []string{l.p + "ref:" + ref}
	}
	var keys []string
	for _, b := range sl.Blinds(ref) {
		keys = append(keys, l.p+"ref:"+b)
	}
	return append(keys, l.p+"ref:"+ref)
}

// sealedLedgerFields are the hash fields that hold rec's payment data:
// sealed with sl, or plain without one.
func sealedLedgerFields(sl *Sealer, rec LedgerRecord) []any {
	if sl == nil {
		return []any{"mer", rec.Merchant, "ref", rec.Reference, "data", rec.Data}
	}
	return []any{
		"smer", sl.Seal(ledgerFieldAAD(rec.ID, "mer"), []byte(rec.Merchant)),
		"sref", sl.Seal(ledgerFieldAAD(rec.ID, "ref"), []byte(rec.Reference)),
		"sdata", sl.Seal(ledgerFieldAAD(rec.ID, "data"), rec.Data),
		"refx", ledgerRefName(sl, rec.Reference),
	}
}

// openLedgerFields sets rec's merchant, reference and data from the hash
// fields m: the sealed ones opened with sl, else the plain ones.
func openLedgerFields(sl *Sealer, rec *LedgerRecord, m map[string]string) error {
	for _, f := range []struct {
		plain, sealed string
		set           func(string)
	}{
		{"mer", "smer", func(v string) { rec.Merchant = v }},
		{"ref", "sref", func(v string) { rec.Reference = v }},
		{"data", "sdata", func(v string) { rec.Data = []byte(v) }},
	} {
		v, ok := m[f.sealed]
		if !ok || v == "" {
			if p, ok := m[f.plain]; ok {
				f.set(p)
			}
			continue
		}
		if sl == nil {
			return errNoSealer
		}
		plain, _, err := sl.Open(ledgerFieldAAD(rec.ID, f.plain), []byte(v))
		if err != nil {
			return err
		}
		f.set(string(plain))
	}
	return nil
}

// ledgerResealScript rewrites a record's payment fields sealed anew if its
// version is still the one read, and moves it between reference indexes
// when the index's name changed.
var ledgerResealScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], 'mer', 'ref', 'data')
redis.call('HSET', KEYS[1], 'smer', ARGV[6], 'sref', ARGV[7], 'sdata', ARGV[8], 'refx', ARGV[9])
if ARGV[4] ~= ARGV[5] then
  if ARGV[4] ~= '' then redis.call('ZREM', ARGV[1] .. 'ref:' .. ARGV[4], ARGV[2]) end
  if ARGV[5] ~= '' then redis.call('ZADD', ARGV[1] .. 'ref:' .. ARGV[5], 0, ARGV[2]) end
end
return 1
`)

// Reseal implements Resealer for the Redis ledger: it walks the records in
// creation order (the cursor is the last member examined) and rewrites,
// one script each, those stored plain or with an older key.
func (l *RedisLedger) Reseal(ctx context.Context, sl *Sealer, cursor string, max int) (string, ResealStats, error) {
	var st ResealStats
	lo := "-"
	if cursor != "" {
		lo = "(" + cursor
	}
	ms, err := l.r.c.ZRangeByLex(ctx, l.p+"created", &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(max)}).Result()
	if err != nil {
		return cursor, st, unavailable("ledger reseal", err)
	}
	pipe := l.r.c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ms))
	for i, m := range ms {
		cmds[i] = pipe.HGetAll(ctx, l.recKey(memberID(m)))
	}
	if len(ms) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return cursor, st, unavailable("ledger reseal", err)
		}
	}
	for i, m := range ms {
		h := cmds[i].Val()
		if len(h) == 0 {
			continue // purged since it was listed
		}
		st.Checked++
		if s := h["sdata"]; s != "" && sl.current([]byte(s)) && sl.current([]byte(h["smer"])) && sl.current([]byte(h["sref"])) {
			continue
		}
		rec, err := decodeLedgerHash(h, sl)
		if err != nil {
			st.Undecryptable++
			continue
		}
		oldName := h["refx"]
		if _, sealed := h["sref"]; !sealed {
			oldName = h["ref"]
		}
		f := sealedLedgerFields(sl, rec)
		n, err := ledgerResealScript.Run(ctx, l.r.c, []string{l.recKey(rec.ID)},
			l.p, m, h["v"], oldName, ledgerRefName(sl, rec.Reference), f[1], f[3], f[5], f[7]).Int()
		if err != nil {
			return cursor, st, unavailable("ledger reseal", err)
		}
		if n == 1 {
			st.Resealed++
		} else {
			st.Raced++
		}
	}
	if len(ms) < max {
		return "", st, nil
	}
	return ms[len(ms)-1], st, nil
}

// Interface guard.
var _ Resealer = (*RedisLedger)(nil)
