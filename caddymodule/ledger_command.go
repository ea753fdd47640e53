package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/qrphgate/qrphgate/ledger"
)

func init() {
	registerModulusCommand(transactionsCommand)
}

// transactionsCommand is `qrphgate modulus transactions`: the payments
// ledger of a running qrphgate, through its admin API.
func transactionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transactions [--status expired] [--since 24h] [--format csv]",
		Short: "List the payments ledger's transactions, newest first",
		Long: `
Lists the QRs the running qrphgate created and what became of them
(pending, paid, declined, expired), with the results their webhooks stated
and the reconciliation flags, newest first, from GET /modulus/transactions
of its admin API. --since and --until take an RFC 3339 time or a duration
back from now (24h, 7d). --format is table (the default), json or csv.`,
		Args: cobra.NoArgs,
		RunE: runTransactions,
	}
	f := cmd.Flags()
	f.String("status", "", "only this status: pending, paid, declined or expired")
	f.String("since", "", "only transactions created at or after this time (RFC 3339, or a duration back from now)")
	f.String("until", "", "only transactions created before this time (RFC 3339, or a duration back from now)")
	f.String("reference", "", "only this merchantReferenceNumber")
	f.Int("limit", defaultTransactionsLimit, "at most this many transactions (0: all)")
	f.String("format", "table", "table, json or csv")
	adminFlags(cmd)
	return cmd
}

func runTransactions(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	format, _ := f.GetString("format")
	if format != "table" && format != "json" && format != "csv" {
		return fmt.Errorf("--format must be table, json or csv")
	}
	limit, _ := f.GetInt("limit")
	if limit < 0 {
		return fmt.Errorf("--limit must not be negative")
	}
	q := url.Values{}
	for _, name := range []string{"status", "since", "until", "reference"} {
		if v, _ := f.GetString(name); v != "" {
			q.Set(name, v)
		}
	}
	var all []ledger.Transaction
	for {
		size := maxTransactionsLimit
		if limit > 0 {
			size = min(limit-len(all), maxTransactionsLimit)
		}
		q.Set("limit", strconv.Itoa(size))
		body, err := adminRequest(cmd, http.MethodGet, "/modulus/transactions?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		var page transactionsPage
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("reading the admin API's answer: %w", err)
		}
		all = append(all, page.Transactions...)
		if page.NextCursor == "" || (limit > 0 && len(all) >= limit) {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	out := cmd.OutOrStdout()
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(transactionsPage{Transactions: all})
	case "csv":
		w := ledger.NewCSVWriter(out)
		if err := w.Write(all); err != nil {
			return err
		}
		return w.Flush()
	}
	return writeTransactionsTable(out, all)
}

// writeTransactionsTable prints transactions for a terminal.
func writeTransactionsTable(out io.Writer, txs []ledger.Transaction) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tID\tREFERENCE\tAMOUNT\tSTATUS\tRESULT\tFLAGS")
	for _, t := range txs {
		result := ""
		if r := t.Result; r != nil {
			result = r.Action
			if r.Amount != nil {
				result += " " + strconv.FormatInt(*r.Amount, 10) + " centavos"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", t.CreatedAt.UTC().Format(time.RFC3339), t.ID, t.Reference,
			t.Currency, t.AmountText, t.Status, result, strings.Join(t.Flags, ","))
	}
	if len(txs) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}
