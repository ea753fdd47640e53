package store

import (
	"bytes"
	"testing"
	"time"
)

// FuzzLedgerRecords feeds arbitrary bytes to the file ledger's record
// decoder (a damaged or foreign file) and to the cursor decoder (what an
// operator passes back to a listing): they refuse or decode, never panic,
// a decoded record survives an encode and a second decode unchanged, and a
// decoded cursor is a member the listing bounds accept.
func FuzzLedgerRecords(f *testing.F) {
	t0 := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	sl, _ := NewSealer([]byte("FAKE-TEST-at-rest-key-fuzz-00001"))
	full := LedgerRecord{ID: "tx-1", Merchant: "TEST-0000-0000-0001", Reference: "ORDER-1", Status: "pending",
		Created: t0, Due: t0.Add(time.Hour), Version: 3, Data: []byte(`{"amount":50000}`)}
	f.Add(encodeLedgerRecord(full, nil))
	f.Add(encodeLedgerRecord(full, sl))
	f.Add(encodeLedgerRecord(LedgerRecord{ID: "x", Status: "paid", Created: t0, Version: 1}, nil))
	f.Add([]byte(encodeCursor(ledgerMember(t0, "tx-1"))))
	f.Add([]byte{1, 200})
	f.Add([]byte("MTc2ODQ3MzAwMDAwMDAwMDAwMDp0eC0x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range []*Sealer{nil, sl} {
			rec, _, err := decodeLedgerRecord(b, s)
			if err != nil {
				continue
			}
			again, _, err := decodeLedgerRecord(encodeLedgerRecord(rec, s), s)
			if err != nil || again.ID != rec.ID || again.Merchant != rec.Merchant || again.Reference != rec.Reference ||
				again.Status != rec.Status || !again.Created.Equal(rec.Created) || !again.Due.Equal(rec.Due) ||
				again.Version != rec.Version || !bytes.Equal(again.Data, rec.Data) {
				t.Fatalf("record %x: %+v, then %+v (%v)", b, rec, again, err)
			}
		}
		if m, err := decodeCursor(string(b)); err == nil {
			if len(m) < 21 || memberID(m) == "" {
				t.Fatalf("cursor %q decoded to %q", b, m)
			}
			if _, _, err := ledgerBounds(LedgerQuery{Cursor: string(b), Limit: 1}); err != nil {
				t.Fatalf("cursor %q: %v", b, err)
			}
		}
	})
}
