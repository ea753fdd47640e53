package outbound

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/fakemodulus"
)

// The health ping goes to each configured API's /ping without credentials,
// takes a slot of the budget, and reports a failure with its code.
func TestHealthPing(t *testing.T) {
	h := newHarness(t, hopts{})
	ups := h.out.Upstreams()
	if len(ups) != 2 || ups[0].Name != "qr" || ups[1].Name != "webhooks" || ups[0].URL != h.fake.URL {
		t.Fatalf("upstreams %+v", ups)
	}
	for _, api := range []string{"qr", "webhooks"} {
		if _, err := h.out.Ping(context.Background(), api, time.Second); err != nil {
			t.Fatalf("ping %s: %v", api, err)
		}
	}
	calls := h.fake.CallsTo("/ping")
	if len(calls) != 2 || calls[0].Authorized || calls[0].Header.Get("Authorization") != "" {
		t.Fatalf("ping calls %+v", calls)
	}
	if h.obs.get("upstream:health_ping:200") != 2 {
		t.Fatalf("observer %v", h.obs.n)
	}
	h.fake.Fail(fakemodulus.Fault{Path: "/ping", Status: 503})
	_, err := h.out.Ping(context.Background(), "qr", time.Second)
	if err == nil || !strings.Contains(err.Error(), "upstream_unavailable") || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("ping against a 503: %v", err)
	}
	if _, err := h.out.Ping(context.Background(), "ledger", time.Second); err == nil {
		t.Fatal("ping of an API that is not configured")
	}
	if h.out.CredentialsRejected() {
		t.Fatal("fresh credentials reported rejected")
	}
	if st := h.out.BreakerStates(); st["qr"] != BreakerClosed || st["webhooks"] != BreakerClosed {
		t.Fatalf("breakers %v", st)
	}
}
