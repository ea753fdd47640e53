package store

import (
	"context"
	"fmt"
	"time"
)

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

// idemName is the Redis key of the idempotency record of key.
func (r *Redis) idemName(sl *Sealer, key string) string {
	if sl == nil {
		return r.keys.idem(key)
	}
	return r.keys.idem("s:" + sl.Blind(key))
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
func (r *Redis) legacyClaim(ctx context.Context, sl *Sealer, key string) (Claim, error) {
	if sl == nil {
		return Claim{}, nil
	}
	names := []string{r.keys.idem(key)}
	for _, b := range sl.Blinds(key)[1:] {
		names = append(names, r.keys.idem("s:"+b))
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
