package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// The cost of encryption at rest on the spool's durable write: the same
// Put (a typical ~300-byte decrypted webhook) with and without a Sealer,
// one at a time (the latency of one acknowledgement) and from 16
// concurrent receivers (group commit), on the file spool and on Redis.
func BenchmarkAtRestSpoolPut(b *testing.B) {
	body := []byte(`{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-2026-000123","transactionId":"8f2d3c4e-1b2a-4c5d-9e8f-7a6b5c4d3e2f",` +
		`"amount":"1500.00","currency":"PHP","activationCode":"A9X4-B7P2-Q6Z8-M3L5","paidAt":"2026-01-15T10:30:00Z",` +
		`"payer":{"bank":"EXAMPLE BANK","account":"**** 1234"},"note":"` + strings.Repeat("x", 40) + `"}`)
	var seq atomic.Int64
	put := func(b *testing.B, s store.Spool) {
		now := time.Now()
		id := fmt.Sprintf("evt_%012d", seq.Add(1))
		ev := store.SpoolEvent{ID: id, Action: "QRPH_SUCCESS", Reference: "ORDER-2026-000123", ActivationCode: "A9X4-B7P2-Q6Z8-M3L5",
			Body: body, Received: now, RetryFrom: now, NextAttempt: now.Add(time.Hour), DedupeKey: "webhook:" + id, DedupeUntil: now.Add(72 * time.Hour)}
		if err := s.Put(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	modes := []struct {
		name string
		at   func(b *testing.B) *store.AtRest
	}{
		{"plain", func(*testing.B) *store.AtRest { return nil }},
		{"sealed", func(b *testing.B) *store.AtRest { return store.NewAtRest(testSealer(b, 1)) }},
	}
	spools := []struct {
		name string
		open func(b *testing.B, at *store.AtRest) store.Spool
	}{
		{"file", func(b *testing.B, at *store.AtRest) store.Spool {
			s, err := store.OpenBolt(filepath.Join(b.TempDir(), "spool.db"), store.BoltOptions{SweepEvery: -1, AtRest: at})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(b *testing.B, at *store.AtRest) store.Spool {
			s, err := store.NewRedisSpool(context.Background(), openBackend(b, redisBackends[0], store.RedisOptions{AtRest: at}), store.RedisSpoolOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, sp := range spools {
		for _, m := range modes {
			b.Run(sp.name+"/"+m.name+"/serial", func(b *testing.B) {
				s := sp.open(b, m.at(b))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					put(b, s)
				}
			})
			b.Run(sp.name+"/"+m.name+"/parallel-16", func(b *testing.B) {
				s := sp.open(b, m.at(b))
				b.ResetTimer()
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						put(b, s)
					}
				})
			})
		}
	}
}

// The sealing itself: AES-256-GCM of the payment part and its blind
// index, what Put adds on the CPU.
func BenchmarkSeal(b *testing.B) {
	sl := testSealer(b, 1)
	part := make([]byte, 360)
	b.SetBytes(int64(len(part)))
	for i := 0; i < b.N; i++ {
		_ = sl.Seal("qrphgate spool event\x00evt_0000000000", part)
		_ = sl.Blind("ORDER-2026-000123")
	}
}
