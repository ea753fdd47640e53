package outbound

import (
	"bytes"
	"errors"
	"strconv"
)

// storedAnswer is a create-QR answer as the idempotency store keeps it: the
// values of the two response headers and the JSON document, so that serving
// a replay needs no JSON parsing.
type storedAnswer struct {
	id        string
	expiresAt string
	doc       []byte
}

// The stored form is "qr2 <len(id)> <len(expiresAt)>\n<id><expiresAt><doc>":
// lengths, not separators, delimit the values, so no value can shift the
// others whatever bytes it holds.
//
// The previous version stored "qr1\n<id>\n<expiresAt>\n<doc>" (split on
// newlines, which an id holding one broke). Such answers are still read,
// for as long as they live in a Redis or file store after an upgrade: the
// document is JSON (no raw newline) and the expiry is RFC 3339, so the last
// line is the document, the one before it the expiry, and everything before
// them the id, newlines included. The caller then checks the id like a
// fresh one (validTransactionID).
const (
	storedPrefix = "qr2 "
	legacyPrefix = "qr1\n"
)

var errStoredFormat = errors.New("stored answer has an unknown format")

func encodeStored(a storedAnswer) []byte {
	b := make([]byte, 0, len(storedPrefix)+8+len(a.id)+len(a.expiresAt)+len(a.doc))
	b = append(b, storedPrefix...)
	b = strconv.AppendInt(b, int64(len(a.id)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(a.expiresAt)), 10)
	b = append(b, '\n')
	b = append(b, a.id...)
	b = append(b, a.expiresAt...)
	return append(b, a.doc...)
}

func decodeStored(v []byte) (storedAnswer, error) {
	if rest, ok := bytes.CutPrefix(v, []byte(legacyPrefix)); ok {
		return decodeLegacy(rest)
	}
	rest, ok := bytes.CutPrefix(v, []byte(storedPrefix))
	if !ok {
		return storedAnswer{}, errStoredFormat
	}
	head, rest, ok := bytes.Cut(rest, []byte{'\n'})
	if !ok {
		return storedAnswer{}, errStoredFormat
	}
	idLen, expLen, ok := bytes.Cut(head, []byte{' '})
	if !ok {
		return storedAnswer{}, errStoredFormat
	}
	n, err1 := strconv.ParseUint(string(idLen), 10, 31)
	m, err2 := strconv.ParseUint(string(expLen), 10, 31)
	if err1 != nil || err2 != nil || n+m > uint64(len(rest)) {
		return storedAnswer{}, errStoredFormat
	}
	return storedAnswer{id: string(rest[:n]), expiresAt: string(rest[n : n+m]), doc: rest[n+m:]}, nil
}

// decodeLegacy reads the previous version's form (after its prefix).
func decodeLegacy(rest []byte) (storedAnswer, error) {
	last := bytes.LastIndexByte(rest, '\n')
	if last < 0 {
		return storedAnswer{}, errStoredFormat
	}
	prev := bytes.LastIndexByte(rest[:last], '\n')
	if prev < 0 {
		return storedAnswer{}, errStoredFormat
	}
	return storedAnswer{id: string(rest[:prev]), expiresAt: string(rest[prev+1 : last]), doc: rest[last+1:]}, nil
}
