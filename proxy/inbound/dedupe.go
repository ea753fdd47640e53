package inbound

import (
	"context"
	"slices"

	"go.uber.org/zap"
)

// legacyKeys returns the keys under which the previous version may have
// marked the event p as seen, other than p's own key: that version keyed
// marks on the activation-code header instead of the payload's merchant.
// The candidates are the header this copy carries (the provider's retry
// carries the header it always sends), no header, and every configured
// activation code (with activation_codes set, the only headers the previous
// version accepted, so with them no header can escape the check).
//
// These marks expire one dedupe_window after the previous version wrote
// them; the check costs one lookup per candidate and only for a copy that
// is not a duplicate under its own key. It can be dropped once no deployment
// can hold marks older than the upgrade (a later release).
func (in *Handler) legacyKeys(p Payload, header string) []string {
	own := p.DedupeKey()
	var keys []string
	for _, code := range append([]string{header, ""}, in.cfg.ActivationCodes...) {
		k := dedupeKey(code, p.Action, p.Reference)
		if k != own && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// seenByPreviousVersion reports whether one of p's legacy keys is marked.
// A lookup that fails is skipped (logged): de-duplication fails open, as
// everywhere, since a possible duplicate is a lesser harm than a lost
// payment notification.
func (in *Handler) seenByPreviousVersion(ctx context.Context, log *zap.Logger, p Payload, header string) bool {
	for _, k := range in.legacyKeys(p, header) {
		seen, err := in.cfg.Dedupe.Contains(ctx, k)
		if err != nil {
			log.Warn("could not check the previous version's de-duplication mark; going on without it", zap.Error(err))
			continue
		}
		if seen {
			return true
		}
	}
	return false
}
