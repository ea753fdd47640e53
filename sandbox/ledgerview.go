package sandbox

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// stated is what a simulated webhook states instead of its QR's amount or
// currency: the page's Pay and Decline endpoints take ?amount=<centavos>
// and ?currency=<code>, so that a test can make the gateway's payments
// ledger see a mismatch.
type stated struct {
	amount   *int64
	currency string
}

func (st stated) amountOr(qr int64) int64 {
	if st.amount != nil {
		return *st.amount
	}
	return qr
}

var currencyParam = regexp.MustCompile(`^[A-Z]{3}$`)

// statedFrom reads the amount and currency parameters of a Pay or Decline
// request.
func statedFrom(r *http.Request) (stated, *simulateError) {
	var st stated
	q := r.URL.Query()
	if v := q.Get("amount"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 99_999_999_999 {
			return st, &simulateError{http.StatusBadRequest, CodeBadRequestBody, "amount must be a whole number of centavos"}
		}
		st.amount = &n
	}
	if v := q.Get("currency"); v != "" {
		if !currencyParam.MatchString(v) {
			return st, &simulateError{http.StatusBadRequest, CodeBadRequestBody, "currency must be three capital letters"}
		}
		st.currency = v
	}
	return st, nil
}

// LedgerView is what the gateway's payments ledger says about a QR, shown
// on the page beside the simulator's own status.
type LedgerView struct {
	Status string   `json:"status"`
	Flags  []string `json:"flags,omitempty"`
}

// Ledger states of the page.
const (
	LedgerNone        = ""            // no ledger wired in
	LedgerOK          = "ok"          // each QR the ledger has carries its view
	LedgerUnavailable = "unavailable" // the ledger could not be read
)

// ledgerTimeout bounds the page's ledger lookup.
const ledgerTimeout = time.Second

// addLedger fills in the ledger's view of each QR and says how the lookup
// went.
func (s *Simulator) addLedger(qrs []QRView) string {
	if s.cfg.LedgerLookup == nil {
		return LedgerNone
	}
	ids := make([]string, len(qrs))
	for i, q := range qrs {
		ids[i] = q.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	views, err := s.cfg.LedgerLookup(ctx, ids)
	if err != nil {
		return LedgerUnavailable
	}
	for i := range qrs {
		if v, ok := views[qrs[i].ID]; ok {
			qrs[i].Ledger = &v
		}
	}
	return LedgerOK
}
