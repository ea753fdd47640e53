package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// An idempotency key is a hash {s: "claimed"|"completed", fp, v, tok}.
// tok names the Begin call that claimed it: run again (a Cluster client's
// retry), the script finds its own claim and hands it back rather than
// have the caller wait on itself until the lease ends. Earlier releases
// wrote no tok and ignore it.
//
// redisClaim is the Lua of a claim, shared by beginScript and
// beginTakeScript (redis_claimtake.go): claim(key, fp, lease, tok) returns
// nil when the key is the caller's (claimed now, or by this very call on an
// earlier run: again is then true), else the current record {s, fp, v}.
const redisClaim = `
local function claim(key, fp, lease, tok)
  local cur = redis.call('HMGET', key, 's', 'fp', 'v', 'tok')
  if cur[1] == 'claimed' and cur[4] == tok then return nil, true end
  if cur[1] then return cur, false end
  redis.call('HSET', key, 's', 'claimed', 'fp', fp, 'tok', tok)
  redis.call('PEXPIRE', key, lease)
  return nil, false
end
`

var beginScript = redis.NewScript(redisClaim + `
local cur = claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if cur then return {cur[1], cur[2], cur[3]} end
return {'owner', ARGV[1], false}
`)

var completeScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 's', 'fp')
if cur[1] == 'completed' then return 0 end
if cur[1] and cur[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'completed', 'fp', ARGV[1], 'v', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

var releaseScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 's', 'fp')
if cur[1] == 'claimed' and cur[2] == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`)

func claimFromReply(reply any) (Claim, error) {
	vals, ok := reply.([]any)
	if !ok || len(vals) != 3 {
		return Claim{}, fmt.Errorf("unexpected reply %T", reply)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	c := Claim{Fingerprint: str(vals[1])}
	switch str(vals[0]) {
	case "owner":
		c.State = Claimed
	case "claimed":
		c.State = InFlight
	case "completed":
		c.State = Completed
		c.Value = []byte(str(vals[2]))
	case "":
		return Claim{}, nil
	default:
		return Claim{}, fmt.Errorf("unexpected state %q", str(vals[0]))
	}
	return c, nil
}

// Begin implements Idempotency. With at-rest encryption, a key that was
// free under its name may still be live under the name it had before the
// keys changed (plain, or another key's blind index; see idemName below):
// for a while after a change Begin looks there too, and hands back what
// it finds rather than make a second call for the same reference.
func (r *Redis) Begin(ctx context.Context, key, fingerprint string, lease time.Duration) (Claim, error) {
	return r.begin(ctx, "", key, fingerprint, lease)
}

// begin is Begin on the records of scope (see idemName).
func (r *Redis) begin(ctx context.Context, scope, key, fingerprint string, lease time.Duration) (Claim, error) {
	sl := r.atRest.Sealer()
	name := r.idemName(scope, sl, key)
	reply, err := beginScript.Run(ctx, r.c, []string{name}, fingerprint, lease.Milliseconds(), callID()).Result()
	if err != nil {
		return Claim{}, unavailable("begin", err)
	}
	c, err := claimFromReply(reply)
	if err != nil {
		return Claim{}, unavailable("begin", err)
	}
	if c.State == Claimed && r.atRest.changedWithin(idemLegacyWindow) {
		if old, err := r.legacyClaim(ctx, scope, sl, key); err != nil || old.State != 0 {
			_ = releaseScript.Run(ctx, r.c, []string{name}, fingerprint).Err()
			return old, err
		}
	}
	if c.State == Completed {
		return r.openClaim(sl, name, c)
	}
	return c, nil
}

// Complete implements Idempotency.
func (r *Redis) Complete(ctx context.Context, key, fingerprint string, value []byte, ttl time.Duration) error {
	return r.complete(ctx, "", key, fingerprint, value, ttl)
}

// complete is Complete on the records of scope.
func (r *Redis) complete(ctx context.Context, scope, key, fingerprint string, value []byte, ttl time.Duration) error {
	name, value := r.completeArgs(scope, key, value)
	if err := completeScript.Run(ctx, r.c, []string{name}, fingerprint, value, ttl.Milliseconds()).Err(); err != nil {
		return unavailable("complete", err)
	}
	return nil
}

// Release implements Idempotency.
func (r *Redis) Release(ctx context.Context, key, fingerprint string) error {
	return r.release(ctx, "", key, fingerprint)
}

// release is Release on the records of scope.
func (r *Redis) release(ctx context.Context, scope, key, fingerprint string) error {
	if err := releaseScript.Run(ctx, r.c, []string{r.idemName(scope, r.atRest.Sealer(), key)}, fingerprint).Err(); err != nil {
		return unavailable("release", err)
	}
	return nil
}

// Get implements Idempotency.
func (r *Redis) Get(ctx context.Context, key string) (Claim, error) {
	return r.get(ctx, "", key)
}

// get is Get on the records of scope.
func (r *Redis) get(ctx context.Context, scope, key string) (Claim, error) {
	sl := r.atRest.Sealer()
	name := r.idemName(scope, sl, key)
	c, err := r.getClaim(ctx, name)
	if err != nil {
		return Claim{}, err
	}
	if c.State == 0 && r.atRest.changedWithin(idemLegacyWindow) {
		return r.legacyClaim(ctx, scope, sl, key)
	}
	return r.openClaim(sl, name, c)
}

// getClaim reads the idempotency record name as it is.
func (r *Redis) getClaim(ctx context.Context, name string) (Claim, error) {
	vals, err := r.c.HMGet(ctx, name, "s", "fp", "v").Result()
	if err != nil {
		return Claim{}, unavailable("get", err)
	}
	if s, _ := vals[0].(string); s == "" {
		return Claim{}, nil
	}
	c, err := claimFromReply(vals)
	if err != nil {
		return Claim{}, unavailable("get", err)
	}
	return c, nil
}

// Idempotency keys at rest. A key names the merchant's reference, and its
// answer holds the QR and the amount: with at-rest encryption the record
// is stored under the key's blind index (idem:s:<hmac>) and its answer
// sealed, with the record's name as additional data. The fingerprint (a
// digest of the request) stays readable, so the scripts compare it.
//
// The name depends on the keys: a record written before they changed
// (plain, or under another key's blind index) lives on under its old name
// for at most its ttl (the QR's validity). For idemLegacyWindow after the
// keys change, Begin and Get also look under the old names, so a
// reference used just before the change is not sent upstream a second
// time; after that window the old names have expired and cost nothing.

// idemLegacyWindow is how long after the at-rest keys change Begin and
// Get also look under the names records had before: longer than any
// idempotent answer lives (the QR validity, 15 minutes, plus a lease).
const idemLegacyWindow = time.Hour

// idemName is the Redis key of the idempotency record of key, among the
// records of scope (a rate budget's key, or "" for none; see
// redisKeys.idemIn).
func (r *Redis) idemName(scope string, sl *Sealer, key string) string {
	if sl == nil {
		return r.keys.idemIn(scope, key)
	}
	return r.keys.idemIn(scope, "s:"+sl.Blind(key))
}

// completeArgs names the record of key and seals its answer (at rest).
func (r *Redis) completeArgs(scope, key string, value []byte) (string, []byte) {
	sl := r.atRest.Sealer()
	name := r.idemName(scope, sl, key)
	if sl != nil {
		value = sl.Seal(idemAAD(name), value)
	}
	return name, value
}

// openClaim opens the answer of a completed claim read under name.
func (r *Redis) openClaim(sl *Sealer, name string, c Claim) (Claim, error) {
	if sl == nil || c.State != Completed {
		return c, nil
	}
	v, _, err := sl.Open(idemAAD(name), c.Value)
	if err != nil {
		return Claim{}, fmt.Errorf("%w: idempotent answer: %w", ErrUnavailable, err)
	}
	c.Value = v
	return c, nil
}

// legacyClaim looks for key under the names it had before the keys
// changed: plain (when sl is set) and every other key's blind index.
func (r *Redis) legacyClaim(ctx context.Context, scope string, sl *Sealer, key string) (Claim, error) {
	if sl == nil {
		return Claim{}, nil
	}
	names := []string{r.keys.idemIn(scope, key)}
	for _, b := range sl.Blinds(key)[1:] {
		names = append(names, r.keys.idemIn(scope, "s:"+b))
	}
	for i, name := range names {
		c, err := r.getClaim(ctx, name)
		if err != nil || c.State == 0 {
			if err != nil {
				return Claim{}, err
			}
			continue
		}
		if i == 0 {
			return c, nil // plain
		}
		return r.openClaim(sl, name, c)
	}
	return Claim{}, nil
}

// Interface guard.
var _ Idempotency = (*Redis)(nil)
