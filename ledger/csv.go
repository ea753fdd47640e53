package ledger

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader names the columns of a CSV listing, in order. Amounts: amount
// is the QR's, as create-QR takes it ("500.00"); result_amount_centavos is
// what the webhook stated, in its unit. Times are RFC 3339 UTC; flags are
// separated by ";".
var CSVHeader = []string{
	"id", "activation_code", "merchant_reference_number", "amount", "currency", "status",
	"created_at", "expires_at", "expired_at", "result_action", "result_transaction_id",
	"result_amount_centavos", "result_currency", "result_received_at", "flags", "webhook_id", "expiry_event_at",
}

// CSVWriter writes transactions as CSV (RFC 4180), header first.
type CSVWriter struct {
	w      *csv.Writer
	header bool
}

// NewCSVWriter returns a writer to w.
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{w: csv.NewWriter(w)} }

// Write writes the header (the first time) and one row per transaction.
func (c *CSVWriter) Write(ts []Transaction) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(CSVHeader); err != nil {
			return err
		}
	}
	for _, t := range ts {
		if err := c.w.Write(csvRow(t)); err != nil {
			return err
		}
	}
	return nil
}

// Flush writes what is buffered and reports any error so far.
func (c *CSVWriter) Flush() error {
	if !c.header { // an empty listing still has its header
		if err := c.Write(nil); err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}

func csvRow(t Transaction) []string {
	row := []string{
		t.ID, t.ActivationCode, t.Reference, t.AmountText, t.Currency, t.Status,
		csvTime(t.CreatedAt), csvTime(t.ExpiresAt), csvTime(t.ExpiredAt), "", "", "", "", "",
		strings.Join(t.Flags, ";"), "", csvTime(t.ExpiryEventAt),
	}
	if r := t.Result; r != nil {
		row[9], row[10], row[12], row[13], row[15] = r.Action, r.TransactionID, r.Currency, csvTime(r.ReceivedAt), r.EventID
		if r.Amount != nil {
			row[11] = strconv.FormatInt(*r.Amount, 10)
		}
	}
	for i, v := range row {
		row[i] = csvCell(v)
	}
	return row
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvCell keeps a spreadsheet from reading a value as a formula: one that
// starts with =, +, -, @, a tab or a carriage return gets a leading
// apostrophe. References come from the merchant and, for an unmatched
// result, from the webhook.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
