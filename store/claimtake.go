package store

import (
	"context"
	"time"
)

// ClaimTaker is the idempotency cache of the calls that draw on one rate
// budget (see WithBudget): besides Idempotency it claims a key and takes a
// slot of the budget in one step, which on Redis is one script, so one round
// trip instead of two on the create-QR path.
type ClaimTaker interface {
	Idempotency
	// BeginTake is Begin, and, only when the key was Claimed, Take of one
	// slot (limit per window) of the budget it is bound to. When the claim
	// is not the caller's, nothing is taken and the Grant is zero; when the
	// budget is full the claim stands (the caller owns the key and waits
	// for a slot) and the Grant says when a slot frees up.
	BeginTake(ctx context.Context, key, fingerprint string, lease time.Duration, limit int, window time.Duration) (Claim, Grant, error)
	// BudgetKey is the budget BeginTake takes from.
	BudgetKey() string
}

// LaterCompleter is implemented by an idempotency cache whose Complete is
// a network round trip (Redis): CompleteLater queues the answer to be
// written, pipelined with the others queued meanwhile, and returns at once;
// done is called with the outcome (on another goroutine; it must not block).
// The caller keeps answering duplicates from memory until done: until then
// another replica sees the key in flight (with its fingerprint) and waits
// for the answer, as it does while the call is made, so nothing is sent
// upstream twice.
type LaterCompleter interface {
	CompleteLater(key, fingerprint string, value []byte, ttl time.Duration, done func(error))
}

// WithBudget returns the Memory's idempotency cache bound to the budget
// budgetKey. Both stay in the one Memory: BeginTake is Begin and Take under
// one lock each, as before.
func (m *Memory) WithBudget(budgetKey string) ClaimTaker {
	return memoryClaimTaker{Memory: m, budget: budgetKey}
}

type memoryClaimTaker struct {
	*Memory
	budget string
}

func (m memoryClaimTaker) BudgetKey() string { return m.budget }

func (m memoryClaimTaker) BeginTake(ctx context.Context, key, fingerprint string, lease time.Duration, limit int, window time.Duration) (Claim, Grant, error) {
	c, err := m.Begin(ctx, key, fingerprint, lease)
	if err != nil || c.State != Claimed {
		return c, Grant{}, err
	}
	g, err := m.Take(ctx, m.budget, limit, window)
	if err != nil {
		// No call is made: give the key back.
		_ = m.Release(context.WithoutCancel(ctx), key, fingerprint)
		return Claim{}, Grant{}, err
	}
	return c, g, nil
}

// Interface guards.
var _ ClaimTaker = memoryClaimTaker{}
