package inbound

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// BenchmarkInboundAccept measures the pipeline alone (no TLS, no HTTP
// server, a memory spool): checks, decryption, parsing, de-duplication.
func BenchmarkInboundAccept(b *testing.B) {
	f := newInboundFixture(b, nil)
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = envelope("data", seal(b, testWebhookKey, fmt.Sprintf(`{"action":"QRPH_SUCCESS","referenceNumber":"B-%09d","amount":9800}`, i)))
	}
	addr := netip.MustParseAddr(allowedIP)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		f.in.ServeWebhook(rec, webhookRequest(bodies[i]), addr)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	body := []byte(envelope("data", seal(b, testWebhookKey, `{"action":"QRPH_SUCCESS","referenceNumber":"B-1"}`)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayload(b *testing.B) {
	pt := []byte(`{"action":"QRPH_SUCCESS","referenceNumber":"REF-20240115-ABC123","amount":100000,"currency":"PHP","timestamp":"2026-01-15T10:30:00Z"}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParsePayload(pt, DefaultActionFields, DefaultReferenceFields); err != nil {
			b.Fatal(err)
		}
	}
}
