package sandbox

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

// The page's Pay and Decline endpoints take the amount (centavos) and
// currency the webhook states, for tests of the gateway's cross-checks;
// bad values are refused before anything is sent.
func TestPayWithAnotherAmount(t *testing.T) {
	h := newHarness(t, nil)
	cb := newCallback(t)
	h.register("QRPH_SUCCESS", cb.srv.URL, "")
	h.register("QRPH_DECLINED", cb.srv.URL, "")
	a, _ := h.createQR("500.00", "KNOB-1")
	b, _ := h.createQR("500.00", "KNOB-2")
	for _, q := range []string{"amount=12.5", "amount=-1", "amount=x", "currency=usd", "currency=PESO"} {
		resp, body := h.request(http.MethodPost, "/sandbox/qr/"+a.ID+"/pay?"+q, "", "", false)
		providerError(t, resp, body, http.StatusBadRequest, CodeBadRequestBody)
	}
	if cb.count() != 0 {
		t.Fatal("a refused request sent a webhook")
	}
	if resp, body := h.request(http.MethodPost, "/sandbox/qr/"+a.ID+"/pay?amount=49999&currency=USD", "", "", false); resp.StatusCode != 200 {
		t.Fatalf("pay: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the webhook", func() bool { return cb.count() == 1 })
	if p := h.openWebhook(cb.request(0)); p.Amount != 49999 || p.Currency != "USD" || p.TransactionID != a.ID {
		t.Fatalf("payload %+v", p)
	}
	if resp, body := h.request(http.MethodPost, "/sandbox/qr/"+b.ID+"/decline?amount=0", "", "", false); resp.StatusCode != 200 {
		t.Fatalf("decline: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the second webhook", func() bool { return cb.count() == 2 })
	if p := h.openWebhook(cb.request(1)); p.Amount != 0 || p.Currency != "PHP" || p.Action != ActionDeclined {
		t.Fatalf("payload %+v", p)
	}
}

// The page shows the gateway ledger's view of each QR it has, says when
// the ledger cannot be read, and says nothing without a ledger.
func TestStateShowsTheLedger(t *testing.T) {
	var fail bool
	var asked []string
	h := newHarness(t, func(c *Config) {
		c.LedgerLookup = func(_ context.Context, ids []string) (map[string]LedgerView, error) {
			asked = ids
			if fail {
				return nil, errors.New("ledger down")
			}
			return map[string]LedgerView{ids[0]: {Status: "paid", Flags: []string{"amount_mismatch"}}}, nil
		}
	})
	older, _ := h.createQR("500.00", "VIEW-1")
	newer, _ := h.createQR("500.00", "VIEW-2")
	st := h.sim.State()
	if st.Ledger != LedgerOK || len(asked) != 2 || asked[0] != newer.ID || asked[1] != older.ID {
		t.Fatalf("ledger %q, asked %v", st.Ledger, asked)
	}
	if v := st.QRs[0].Ledger; v == nil || v.Status != "paid" || len(v.Flags) != 1 || st.QRs[1].Ledger != nil {
		t.Fatalf("views %+v %+v", st.QRs[0].Ledger, st.QRs[1].Ledger)
	}
	fail = true
	if st := h.sim.State(); st.Ledger != LedgerUnavailable || st.QRs[0].Ledger != nil {
		t.Fatalf("unavailable ledger: %q %+v", st.Ledger, st.QRs[0].Ledger)
	}
	if st := newHarness(t, nil).sim.State(); st.Ledger != LedgerNone {
		t.Fatalf("no ledger: %q", st.Ledger)
	}
}
