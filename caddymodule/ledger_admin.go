package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/policy"
)

func init() {
	addAdminRoute("/modulus/transactions", handleTransactions)
}

const (
	defaultTransactionsLimit = 100
	maxTransactionsLimit     = 1000
)

// headerNextCursor carries a CSV page's next cursor (JSON has it in the
// body).
const headerNextCursor = "Modulus-Next-Cursor"

// transactionsPage is the JSON answer of GET /modulus/transactions.
type transactionsPage struct {
	Transactions []ledger.Transaction `json:"transactions"`
	// NextCursor continues the listing (&cursor=); absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// handleTransactions serves GET /modulus/transactions?status=&since=&until=
// &reference=&limit=&cursor=&format=json|csv: the payments ledger, newest
// first, one page at a time, activation codes masked (the command line
// shows what it answers).
func handleTransactions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethodNotAllowed}
	}
	li := currentLedger.Load()
	if li == nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no payments ledger is running (no modulus handler in the config)")}
	}
	q, format, err := transactionsQuery(r.URL.Query(), time.Now())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	page, err := li.engine.List(r.Context(), q)
	switch {
	case errors.Is(err, ledger.ErrBadQuery):
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("reading the payments ledger: %w", err)}
	}
	// Operators see which merchant, never a whole activation code.
	for i := range page.Transactions {
		page.Transactions[i].ActivationCode = policy.MaskActivationCode(page.Transactions[i].ActivationCode)
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if page.Next != "" {
			w.Header().Set(headerNextCursor, page.Next)
		}
		cw := ledger.NewCSVWriter(w)
		if err := cw.Write(page.Transactions); err != nil {
			return err
		}
		return cw.Flush()
	}
	return writeAdminJSON(w, http.StatusOK, transactionsPage{Transactions: page.Transactions, NextCursor: page.Next})
}

// transactionsQuery reads the listing's parameters. since and until take
// an RFC 3339 time or a duration back from now ("24h", "7d").
func transactionsQuery(v url.Values, now time.Time) (ledger.Query, string, error) {
	q := ledger.Query{Status: v.Get("status"), Reference: v.Get("reference"), Cursor: v.Get("cursor"), Limit: defaultTransactionsLimit}
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		raw := v.Get(p.name)
		if raw == "" {
			continue
		}
		t, err := pointInTime(raw, now)
		if err != nil {
			return q, "", fmt.Errorf("%s must be an RFC 3339 time or a duration back from now, such as 24h: %w", p.name, err)
		}
		*p.into = t
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxTransactionsLimit {
			return q, "", fmt.Errorf("limit must be 1 to %d", maxTransactionsLimit)
		}
		q.Limit = n
	}
	format := v.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return q, "", errors.New("format must be json or csv")
	}
	return q, format, nil
}

// pointInTime reads an RFC 3339 time, or a duration back from now.
func pointInTime(raw string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, raw); err == nil {
		return t, nil
	}
	d, err := caddy.ParseDuration(raw)
	if err != nil {
		return time.Time{}, errors.New("not a time or a duration")
	}
	if d < 0 {
		return time.Time{}, errors.New("a negative duration")
	}
	return now.Add(-d), nil
}
