package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// WithBudget returns the Redis store's idempotency cache bound to the rate
// budget budgetKey: BeginTake claims a key and takes a slot of that budget in
// one script, so the create-QR path makes one round trip where it made two,
// and CompleteLater pipelines the answers. On a Cluster its records carry the
// budget's hash tag (see redisKeys.idemIn), so both keys of the script are in
// one slot; elsewhere their names are those of the store's own Idempotency.
func (r *Redis) WithBudget(budgetKey string) ClaimTaker {
	return &redisClaimTaker{r: r, budget: budgetKey}
}

type redisClaimTaker struct {
	r      *Redis
	budget string
}

// beginTakeScript is beginScript's claim, then takeScript's admission on
// the budget (KEYS[2]) when the claim is the caller's, built from the same
// Lua (redisClaim, redisTakeSlot): one atomic step on the server, so it is
// exact across replicas as each of them was (the window on the server's
// clock, TIME). ARGV[3] names the call, for the claim and the slot alike:
// run again (a Cluster client's retry), it finds its own claim and its own
// slot rather than take a second one (a first run has no slot to look
// for). A claim that is not the caller's takes no slot (an idempotent
// replay costs the budget nothing, as before).
var beginTakeScript = redis.NewScript(redisClaim + redisTakeSlot + `
local cur, again = claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if cur then return {cur[1], cur[2], cur[3], 0, 0, 0} end
local ok, n, wait = take(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[3], again)
return {'owner', ARGV[1], false, ok, n, wait}
`)

func (t *redisClaimTaker) BudgetKey() string { return t.budget }

// BeginTake implements ClaimTaker. For an hour after the at-rest keys
// changed, a key claimed under its name may still be live under the name it
// had before (see Begin): then the claim and the slot are given back, and
// the old record is the answer.
func (t *redisClaimTaker) BeginTake(ctx context.Context, key, fingerprint string, lease time.Duration, limit int, window time.Duration) (Claim, Grant, error) {
	r := t.r
	sl := r.atRest.Sealer()
	name, id := r.idemName(t.budget, sl, key), callID()
	reply, err := beginTakeScript.Run(ctx, r.c, []string{name, r.keys.budget(t.budget)},
		fingerprint, lease.Milliseconds(), id, limit, window.Microseconds()).Result()
	if err != nil {
		return Claim{}, Grant{}, unavailable("begin", err)
	}
	vals, ok := reply.([]any)
	if !ok || len(vals) != 6 {
		return Claim{}, Grant{}, unavailable("begin", fmt.Errorf("unexpected reply %T", reply))
	}
	c, err := claimFromReply(vals[:3])
	if err != nil {
		return Claim{}, Grant{}, unavailable("begin", err)
	}
	if c.State != Claimed {
		c, err = r.openClaim(sl, name, c)
		return c, Grant{}, err
	}
	n := func(v any) int64 { i, _ := v.(int64); return i }
	g := Grant{OK: n(vals[3]) == 1, Used: int(n(vals[4])), RetryAfter: time.Duration(n(vals[5])) * time.Microsecond}
	if sl != nil && r.atRest.changedWithin(idemLegacyWindow) {
		if old, err := r.legacyClaim(ctx, t.budget, sl, key); err != nil || old.State != 0 {
			bg := context.WithoutCancel(ctx)
			_ = releaseScript.Run(bg, r.c, []string{name}, fingerprint).Err()
			_ = r.c.ZRem(bg, r.keys.budget(t.budget), id).Err() // no call is made in this slot
			return old, Grant{}, err
		}
	}
	return c, g, nil
}

func (t *redisClaimTaker) Begin(ctx context.Context, key, fingerprint string, lease time.Duration) (Claim, error) {
	return t.r.begin(ctx, t.budget, key, fingerprint, lease)
}

func (t *redisClaimTaker) Complete(ctx context.Context, key, fingerprint string, value []byte, ttl time.Duration) error {
	return t.r.complete(ctx, t.budget, key, fingerprint, value, ttl)
}

func (t *redisClaimTaker) Release(ctx context.Context, key, fingerprint string) error {
	return t.r.release(ctx, t.budget, key, fingerprint)
}

func (t *redisClaimTaker) Get(ctx context.Context, key string) (Claim, error) {
	return t.r.get(ctx, t.budget, key)
}

// CompleteLater implements LaterCompleter: the answer joins the store's
// completion pipeline (see completer).
func (t *redisClaimTaker) CompleteLater(key, fingerprint string, value []byte, ttl time.Duration, done func(error)) {
	name, value := t.r.completeArgs(t.budget, key, value)
	t.r.completer.add(&pendingComplete{name: name, fingerprint: fingerprint, value: value, ttl: ttl, done: done})
}

// Interface guards.
var (
	_ ClaimTaker     = (*redisClaimTaker)(nil)
	_ LaterCompleter = (*redisClaimTaker)(nil)
)
