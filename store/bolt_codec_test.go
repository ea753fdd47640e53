package store

import (
	"bytes"
	"testing"
	"time"
)

// A spool file written before Source and Reconciliation existed (record
// version 1) still reads: the events come back whole, with both empty; and
// the current version keeps both.
func TestSpoolRecordVersions(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	ev := SpoolEvent{ID: "evt_1", Action: "QRPH_SUCCESS", Reference: "ORDER-1", Body: []byte(`{"a":1}`),
		Received: now, RetryFrom: now, NextAttempt: now, Attempts: 2}
	// Version 1 is version 2 without the two trailing empty strings.
	v2 := encodeEvent(&ev, nil)
	if v2[0] != 2 || !bytes.HasSuffix(v2, []byte{0, 0}) {
		t.Fatalf("version 2 record % x", v2)
	}
	v1 := append([]byte{1}, v2[1:len(v2)-2]...)
	got, err := decodeEvent(v1, nil, true)
	if err != nil || got.ID != ev.ID || string(got.Body) != string(ev.Body) || got.Attempts != 2 || got.Source != "" {
		t.Fatalf("version 1: %+v %v", got, err)
	}
	ev.Source, ev.Reconciliation = "qrphgate", "amount_mismatch"
	got, err = decodeEvent(encodeEvent(&ev, nil), nil, true)
	if err != nil || got.Source != "qrphgate" || got.Reconciliation != "amount_mismatch" || string(got.Body) != string(ev.Body) {
		t.Fatalf("version 2: %+v %v", got, err)
	}
	if _, err := decodeEvent(append([]byte{9}, v2[1:]...), nil, true); err == nil {
		t.Fatal("an unknown version was read")
	}
	// A version 1 record with the version 2 fields is refused (trailing bytes).
	if _, err := decodeEvent(append([]byte{1}, v2[1:]...), nil, true); err == nil {
		t.Fatal("a version 1 record with trailing bytes was read")
	}
}

// The CPU the sealer adds to a spool write: encoding one event's record
// plain and sealed (the durable write's fsync or round trip comes on top,
// the same for both: BenchmarkAtRestSpoolPut).
func BenchmarkSpoolRecordEncode(b *testing.B) {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	body := make([]byte, 320)
	ev := SpoolEvent{ID: "evt_01KF0K8Y201X71GQEGK7RJX6VE", Action: "QRPH_SUCCESS", Reference: "ORDER-2026-000123",
		ActivationCode: "A9X4-B7P2-Q6Z8-M3L5", Body: body, Received: now, RetryFrom: now, NextAttempt: now}
	sl, err := NewSealer([]byte("FAKE-TEST-at-rest-key-bench-0001"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sl   *Sealer
	}{{"plain", nil}, {"sealed", sl}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = encodeEvent(&ev, c.sl)
			}
		})
	}
}
