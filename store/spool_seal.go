package store

import "fmt"

// A spool event's payment part (its reference, activation code and
// body) is what encryption at rest seals; the rest (ids, times, attempts,
// the action, the last error) stays readable, so that the spool can
// index, schedule, list and dead-letter an event it cannot decrypt. The
// reference is also kept as a blind index (refBlind) for the history's
// lookups by reference.

// storedPayment is an event's payment part as a back end read it.
type storedPayment struct {
	// sealed is the sealed value; nil when the part was stored plain.
	sealed []byte
	// stale: sealed with a key that is no longer the sealing one.
	stale bool
	// refBlind is the stored blind index of the reference ("" when plain).
	refBlind string
}

// spoolAAD is the additional data a spool event's payment part is sealed
// with: the event's id, so a sealed part copied onto another event does
// not open.
func spoolAAD(id string) string { return "qrphgate spool event\x00" + id }

// sealPayment returns what to store for ev's payment part under sl: the
// sealed value and blind index, or (nil, "") to store it plain (sl nil).
// A part read sealed is kept as it is unless it must be sealed again (an
// older key, and a Sealer to seal with); one that could not be decrypted
// is always kept as it is.
func sealPayment(sl *Sealer, ev *SpoolEvent) (sealed []byte, refBlind string) {
	p := ev.payment
	if p.sealed != nil && (ev.Undecryptable != "" || sl == nil || !p.stale) {
		return p.sealed, p.refBlind
	}
	if sl == nil {
		return nil, ""
	}
	return sl.Seal(spoolAAD(ev.ID), packFields([]byte(ev.Reference), []byte(ev.ActivationCode), ev.Body)),
		sl.Blind(ev.Reference)
}

// openPayment fills ev's payment part from sealed, or records why it
// cannot (ev.Undecryptable, also returned).
func openPayment(sl *Sealer, ev *SpoolEvent, sealed []byte, refBlind string) error {
	ev.payment = storedPayment{sealed: sealed, refBlind: refBlind}
	err := errNoSealer
	if sl != nil {
		var plain []byte
		plain, ev.payment.stale, err = sl.Open(spoolAAD(ev.ID), sealed)
		if err == nil {
			var f [][]byte
			if f, err = unpackFields(plain, 3); err == nil {
				ev.Reference, ev.ActivationCode, ev.Body = string(f[0]), string(f[1]), f[2]
				return nil
			}
			err = fmt.Errorf("%w: the decrypted part is malformed", ErrUndecryptable)
		}
	}
	ev.Undecryptable = err.Error()
	return err
}

// errNoSealer opens a sealed value when no at-rest key is configured.
var errNoSealer = fmt.Errorf("%w: sealed at rest, and no at_rest_key is configured", ErrUndecryptable)

// Sealed reports whether the event's payment part is stored sealed, and
// whether with an older key (it needs sealing again).
func (ev *SpoolEvent) Sealed() (sealed, stale bool) {
	return ev.payment.sealed != nil, ev.payment.stale
}

// matchesReference reports whether the stored event has reference ref,
// without decrypting it: by its blind index when sealed (any key's, during
// a rotation), else by the plain value.
func (ev *SpoolEvent) matchesReference(sl *Sealer, ref string) bool {
	if ev.payment.sealed == nil {
		return ev.Reference == ref
	}
	if sl == nil || ev.payment.refBlind == "" {
		return false
	}
	for _, b := range sl.Blinds(ref) {
		if b == ev.payment.refBlind {
			return true
		}
	}
	return false
}
