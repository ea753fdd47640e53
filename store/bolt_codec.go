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
const (
	recordVersion   = 2
	recordVersionV1 = 1
)

var errCorruptRecord = errors.New("corrupt spool record")

func encodeEvent(ev *SpoolEvent) []byte {
	b := make([]byte, 0, 64+len(ev.ID)+len(ev.Action)+len(ev.Reference)+len(ev.ActivationCode)+
		len(ev.LastError)+len(ev.DedupeKey)+len(ev.Body)+len(ev.Source)+len(ev.Reconciliation))
	b = append(b, recordVersion)
	for _, s := range []string{ev.ID, ev.Action, ev.Reference, ev.ActivationCode, ev.LastError, ev.DedupeKey} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, t := range []time.Time{ev.Received, ev.RetryFrom, ev.NextAttempt, ev.DeadAt, ev.DedupeUntil} {
		b = binary.AppendVarint(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, uint64(ev.Attempts))
	b = binary.AppendUvarint(b, uint64(len(ev.Body)))
	b = append(b, ev.Body...)
	for _, s := range []string{ev.Source, ev.Reconciliation} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeEvent(b []byte) (SpoolEvent, error) {
	var ev SpoolEvent
	if len(b) == 0 || (b[0] != recordVersion && b[0] != recordVersionV1) {
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

type decoder struct {
	b   []byte
	err bool
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
