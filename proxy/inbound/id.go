package inbound

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// crockford is Crockford's base32 alphabet (no I, L, O, U): ids stay
// unambiguous when read aloud or copied from a log.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewEventID returns an event id ("evt_" and 26 characters): 48 bits of
// millisecond time then 80 random bits, in the ULID layout, so ids sort by
// receipt time (the spool lists by id) and never collide in practice.
func NewEventID(now time.Time) string {
	var raw [16]byte
	_, _ = rand.Read(raw[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return formatEventID(now, raw)
}

// formatEventID writes t's milliseconds into raw's first 48 bits and
// formats the 128 bits as an event id.
func formatEventID(t time.Time, raw [16]byte) string {
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(raw[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(raw[2:6], uint32(ms))
	// 128 bits as 26 base32 digits: the first digit carries the top 3 bits.
	hi := binary.BigEndian.Uint64(raw[0:8])
	lo := binary.BigEndian.Uint64(raw[8:16])
	var out [30]byte
	copy(out[:], "evt_")
	for i := 29; i >= 4; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
