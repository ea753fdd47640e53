package store

import (
	"bytes"
	"testing"
	"time"
)

// FuzzFileRecords feeds arbitrary bytes to the file store's record
// decoders (a damaged or foreign file): they must refuse or decode, never
// panic or allocate without bound, and whatever they decode must survive
// an encode and a second decode unchanged (the encoding itself need not be
// the input's: varints may be written non-minimally).
func FuzzFileRecords(f *testing.F) {
	f.Add(encodeLog([]time.Time{time.Unix(1700000000, 5), time.Unix(1700000001, 0)}))
	f.Add(encodeLog(nil))
	f.Add(encodeClaim("k", memClaim{Claim: Claim{State: Completed, Fingerprint: "fp", Value: []byte(`{"id":"1"}`)}, expires: time.Unix(1700000000, 0)}, nil))
	f.Add(encodeClaim("k", memClaim{Claim: Claim{State: Claimed, Fingerprint: "fp"}, expires: time.Unix(1, 0)}, nil))
	sl, _ := NewSealer([]byte("FAKE-TEST-at-rest-key-fuzz-00001"))
	f.Add(encodeClaim("k", memClaim{Claim: Claim{State: Completed, Fingerprint: "fp", Value: []byte(`{"id":"1"}`)}, expires: time.Unix(1700000000, 0)}, sl))
	f.Add([]byte{1, 200})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if log, err := decodeLog(b); err == nil {
			again, err := decodeLog(encodeLog(log))
			if err != nil || len(again) != len(log) {
				t.Fatalf("log %x: %v, then %v (%v)", b, log, again, err)
			}
			for i := range log {
				if !again[i].Equal(log[i]) {
					t.Fatalf("log %x: entry %d %v became %v", b, i, log[i], again[i])
				}
			}
		}
		for _, s := range []*Sealer{nil, sl} {
			name := string(idemRecordKey(s, "k"))
			k, c, err := decodeClaim(name, b, s)
			if err != nil {
				continue
			}
			k2, again, err := decodeClaim(string(idemRecordKey(s, k)), encodeClaim(k, c, s), s)
			if err != nil || k2 != k || again.State != c.State || again.Fingerprint != c.Fingerprint ||
				!bytes.Equal(again.Value, c.Value) || !again.expires.Equal(c.expires) {
				t.Fatalf("claim %x: %+v, then %+v (%v)", b, c, again, err)
			}
		}
	})
}
