package inbound

import (
	"context"
	"slices"

	"go.uber.org/zap"
)

// earlierKeys returns the keys under which earlier releases may have marked
// the event p as seen (never p's own key, which has four fields to their
// three). Both forms are the digest of (code, action, reference):
//
//   - the release before the transaction id joined the key used the
//     payload's merchant as code (empty without one);
//   - the release before that used the activation-code header instead.
//     Its candidates are the header this copy carries (the provider's
//     retry carries the header it always sends), no header, and every
//     configured activation code (with activation_codes set, the only
//     headers that release accepted, so with them no header escapes).
//
// These marks expire one dedupe_window after those releases wrote them; the
// check can be dropped once no deployment can hold marks that old.
func (in *Handler) earlierKeys(p Payload, header string) []string {
	codes := append([]string{p.Merchant, header, ""}, in.cfg.ActivationCodes...)
	keys := make([]string, 0, len(codes))
	for _, code := range codes {
		if k := digestKey(code, p.Action, p.Reference); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// seenUnderEarlierKey reports whether one of p's earlier keys is marked. It
// runs only for a copy that is new under its own key, so a duplicate (the
// provider's retry, a replay) costs the one Add it always did. A lookup
// that fails is skipped (logged): de-duplication fails open, as everywhere,
// since a possible duplicate is a lesser harm than a lost payment
// notification.
func (in *Handler) seenUnderEarlierKey(ctx context.Context, log *zap.Logger, p Payload, header string) bool {
	for _, k := range in.earlierKeys(p, header) {
		seen, err := in.cfg.Dedupe.Contains(ctx, k)
		if err != nil {
			log.Warn("could not check an earlier release's de-duplication mark; going on without it", zap.Error(err))
			continue
		}
		if seen {
			return true
		}
	}
	return false
}
