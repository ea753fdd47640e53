package ledger_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/store"
)

// The engine's own cost on the memory store, without the gateway around it
// (caddymodule's BenchmarkLedger* measure the hot paths with and without
// the ledger, on each back end).
func BenchmarkRecordAndReconcile(b *testing.B) {
	l, _ := ledger.New(ledger.Config{Store: store.NewMemoryLedger()})
	now := time.Now()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("a78efd32-de3b-4854-b599-%012d", i)
	}
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := l.Record(ctx, ledger.QR{ID: ids[i%len(ids)] + "-" + fmt.Sprint(i/len(ids)), ActivationCode: merchant, Reference: "R",
				Amount: 50000, Currency: "PHP", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reconcile", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = l.Record(ctx, ledger.QR{ID: fmt.Sprintf("rc-%d", i), ActivationCode: merchant, Reference: fmt.Sprintf("RC-%d", i),
				Amount: 50000, Currency: "PHP", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := l.Reconcile(ctx, ledger.Notification{EventID: "evt_1", ActivationCode: merchant, Action: "QRPH_SUCCESS",
				TransactionID: fmt.Sprintf("rc-%d", i), Amount: 50000, HasAmount: true, Currency: "PHP", ReceivedAt: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
