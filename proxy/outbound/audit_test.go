package outbound

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/qrphgate/qrphgate/proxy"
)

type auditLog struct {
	mu  sync.Mutex
	evs []proxy.AuditEvent
}

func (a *auditLog) Audit(e proxy.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, e)
}

// A QR the provider created is one audit line, with its transaction id
// and reference (never the amount or the QR); an idempotent replay is
// none.
func TestCreatedQRIsAudited(t *testing.T) {
	audits := &auditLog{}
	h := newHarness(t, hopts{auditor: audits})
	rec := h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1"))
	if rec.Code != http.StatusOK {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var ans CreateQRResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &ans)
	h.do(http.MethodPost, "/v1/pay/qr", createBody("ORDER-1")) // replayed
	h.do(http.MethodPost, "/v1/pay/qr", `{"amount":"x"}`)      // refused before any call
	audits.mu.Lock()
	defer audits.mu.Unlock()
	if len(audits.evs) != 1 {
		t.Fatalf("audited %+v", audits.evs)
	}
	e := audits.evs[0]
	if e.Event != proxy.AuditQRCreated || e.TransactionID != ans.ID || e.Reference != "ORDER-1" {
		t.Fatalf("audited %+v", e)
	}
	b, _ := json.Marshal(e)
	if string(b) != `{"transaction_id":"`+ans.ID+`","reference":"ORDER-1"}` {
		t.Fatalf("line fields %s", b)
	}
}
