package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// The file spool's record format: a version byte, then the event's fields
// in a fixed order, strings and bytes length-prefixed (uvarint), times as
// Unix nanoseconds (varint, 0 for the zero time). A new field gets a new
// version; decoding reads the versions it knows and refuses the others.
// Version 2 added Source and Reconciliation after the body; version 1
// records (written before) read with both empty.
//
// Version 3 carries the history's delivery time and the payment part
// (reference, activation code, body) either plain or sealed at rest (see
// spool_seal.go): the other fields first, then a mode byte (0 plain, 1
// sealed) and the part. It is written only for a sealed or delivered
// event, so a spool without at_rest_key and without history writes
// version 2 records, byte for byte as before.
const (
	recordVersion   = 2
	recordVersionV1 = 1
	recordVersionV3 = 3
)

var errCorruptRecord = errors.New("corrupt spool record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeEvent encodes ev, sealing its payment part with sl (nil: plain).
func encodeEvent(ev *SpoolEvent, sl *Sealer) []byte {
	sealed, refBlind := sealPayment(sl, ev)
	if sealed != nil || !ev.DeliveredAt.IsZero() {
		return encodeEventV3(ev, sealed, refBlind)
	}
	b := make([]byte, 0, 64+len(ev.ID)+len(ev.Action)+len(ev.Reference)+len(ev.ActivationCode)+
		len(ev.LastError)+len(ev.DedupeKey)+len(ev.Body)+len(ev.Source)+len(ev.Reconciliation))
	b = append(b, recordVersion)
	for _, s := range []string{ev.ID, ev.Action, ev.Reference, ev.ActivationCode, ev.LastError, ev.DedupeKey} {
		b = appendString(b, s)
	}
	for _, t := range []time.Time{ev.Received, ev.RetryFrom, ev.NextAttempt, ev.DeadAt, ev.DedupeUntil} {
		b = binary.AppendVarint(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, uint64(ev.Attempts))
	b = binary.AppendUvarint(b, uint64(len(ev.Body)))
	b = append(b, ev.Body...)
	for _, s := range []string{ev.Source, ev.Reconciliation} {
		b = appendString(b, s)
	}
	return b
}

func encodeEventV3(ev *SpoolEvent, sealed []byte, refBlind string) []byte {
	b := make([]byte, 0, 96+len(ev.ID)+len(ev.Action)+len(ev.LastError)+len(ev.DedupeKey)+len(ev.Source)+
		len(ev.Reconciliation)+len(refBlind)+len(sealed)+len(ev.Reference)+len(ev.ActivationCode)+len(ev.Body))
	b = append(b, recordVersionV3)
	for _, s := range []string{ev.ID, ev.Action, ev.LastError, ev.DedupeKey, ev.Source, ev.Reconciliation, refBlind} {
		b = appendString(b, s)
	}
	for _, t := range []time.Time{ev.Received, ev.RetryFrom, ev.NextAttempt, ev.DeadAt, ev.DedupeUntil, ev.DeliveredAt} {
		b = binary.AppendVarint(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, uint64(ev.Attempts))
	if sealed != nil {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(sealed)))
		return append(b, sealed...)
	}
	b = append(b, 0)
	for _, s := range []string{ev.Reference, ev.ActivationCode} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Body)))
	return append(b, ev.Body...)
}

// decodeEvent reads a record of any known version. A sealed payment part
// is opened with sl when open is set (a failure is recorded in
// ev.Undecryptable, not returned: the record itself is sound); listings
// that need no payload leave it closed.
func decodeEvent(b []byte, sl *Sealer, open bool) (SpoolEvent, error) {
	var ev SpoolEvent
	if len(b) == 0 {
		return ev, errCorruptRecord
	}
	switch b[0] {
	case recordVersionV3:
		return decodeEventV3(b[1:], sl, open)
	case recordVersion, recordVersionV1:
	default:
		return ev, errCorruptRecord
	}
	d := decoder{b: b[1:]}
	for _, s := range []*string{&ev.ID, &ev.Action, &ev.Reference, &ev.ActivationCode, &ev.LastError, &ev.DedupeKey} {
		*s = string(d.bytes())
	}
	for _, t := range []*time.Time{&ev.Received, &ev.RetryFrom, &ev.NextAttempt, &ev.DeadAt, &ev.DedupeUntil} {
		*t = fromUnixNano(d.varint())
	}
	ev.Attempts = int(d.uvarint())
	ev.Body = append([]byte(nil), d.bytes()...)
	if b[0] >= 2 {
		ev.Source, ev.Reconciliation = string(d.bytes()), string(d.bytes())
	}
	if d.err || len(d.b) != 0 {
		return SpoolEvent{}, errCorruptRecord
	}
	return ev, nil
}

func decodeEventV3(b []byte, sl *Sealer, open bool) (SpoolEvent, error) {
	var ev SpoolEvent
	var refBlind string
	d := decoder{b: b}
	for _, s := range []*string{&ev.ID, &ev.Action, &ev.LastError, &ev.DedupeKey, &ev.Source, &ev.Reconciliation, &refBlind} {
		*s = string(d.bytes())
	}
	for _, t := range []*time.Time{&ev.Received, &ev.RetryFrom, &ev.NextAttempt, &ev.DeadAt, &ev.DedupeUntil, &ev.DeliveredAt} {
		*t = fromUnixNano(d.varint())
	}
	ev.Attempts = int(d.uvarint())
	mode := d.byte()
	switch mode {
	case 0:
		ev.Reference, ev.ActivationCode = string(d.bytes()), string(d.bytes())
		ev.Body = append([]byte(nil), d.bytes()...)
	case 1:
		sealed := append([]byte(nil), d.bytes()...)
		if d.err || len(sealed) == 0 {
			return SpoolEvent{}, errCorruptRecord
		}
		if open {
			openPayment(sl, &ev, sealed, refBlind)
		} else {
			ev.payment = storedPayment{sealed: sealed, refBlind: refBlind}
		}
	default:
		d.err = true
	}
	if d.err || len(d.b) != 0 {
		return SpoolEvent{}, errCorruptRecord
	}
	return ev, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
