package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	registerModulusCommand(eventsCommand)
}

// eventsCommand is `qrphgate modulus events list|replay`: the webhook
// spool's history of a running qrphgate, through its admin API.
func eventsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the webhook events, or queue them again for the app",
		Long: `
The webhook events a running qrphgate holds (pending, delivered and kept for
delivered_retention, dead letters), through its admin API: "list" shows
their metadata (never a payload), "replay" queues the delivered and dead
ones a filter selects again with their original Webhook-Id, for an app that
lost its database.`,
	}
	cmd.AddCommand(eventsListCommand(), eventsReplayCommand())
	return cmd
}

func eventsListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [--reference ORDER-1] [--status delivered] [--since 24h]",
		Short: "List the webhook events, newest first (metadata only)",
		Long: `
Lists a spool's webhook events, newest first, from GET /modulus/events.
--since and --until take an RFC 3339 time or a duration back from now
(24h, 7d); --status is pending, delivered or dead; --format table (the
default) or json.`,
		Args: cobra.NoArgs,
		RunE: runEventsList,
	}
	f := cmd.Flags()
	f.String("reference", "", "only the events of this reference")
	f.String("status", "", "only this status: pending, delivered or dead")
	f.String("since", "", "only events received at or after this time (RFC 3339, or a duration back from now)")
	f.String("until", "", "only events received before this time (RFC 3339, or a duration back from now)")
	f.String("spool", "", "the spool, when the config has several (as /modulus/status names it)")
	f.Int("limit", defaultEventsLimit, "at most this many events (0: all)")
	f.String("format", "table", "table or json")
	adminFlags(cmd)
	return cmd
}

func runEventsList(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	format, _ := f.GetString("format")
	if format != "table" && format != "json" {
		return fmt.Errorf("--format must be table or json")
	}
	limit, _ := f.GetInt("limit")
	if limit < 0 {
		return fmt.Errorf("--limit must not be negative")
	}
	q := url.Values{}
	for _, name := range []string{"reference", "status", "since", "until", "spool"} {
		if v, _ := f.GetString(name); v != "" {
			q.Set(name, v)
		}
	}
	var all eventsPage
	for {
		size := maxEventsLimit
		if limit > 0 {
			size = min(limit-len(all.Events), maxEventsLimit)
		}
		q.Set("limit", strconv.Itoa(size))
		body, err := adminRequest(cmd, http.MethodGet, eventsURI(q), nil)
		if err != nil {
			return err
		}
		var page eventsPage
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("reading the admin API's answer: %w", err)
		}
		all.Spool = page.Spool
		all.Events = append(all.Events, page.Events...)
		if page.NextCursor == "" || (limit > 0 && len(all.Events) >= limit) {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	out := cmd.OutOrStdout()
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	return writeEventsTable(out, all.Events)
}

// writeEventsTable prints events for a terminal.
func writeEventsTable(out io.Writer, evs []eventEntry) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tID\tSTATUS\tACTION\tREFERENCE\tATTEMPTS\tLAST ERROR")
	for _, e := range evs {
		ref := e.Reference
		if e.Undecryptable != "" {
			ref = "(undecryptable)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Received.UTC().Format(time.RFC3339), e.ID, e.Status, e.Action, ref,
			e.Attempts, e.LastError)
	}
	if len(evs) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}

func eventsReplayCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay (--reference ORDER-1 | --since 24h --status delivered) [--until 1h]",
		Short: "Queue delivered or dead events again, with their original Webhook-Id",
		Long: `
Queues again the delivered (kept for delivered_retention) and dead events a
filter selects, through POST /modulus/events/replay: every event of a
reference, or those received in a time range with a status (delivered or
dead). Each keeps its Webhook-Id, so an app that de-duplicates on it is
safe; pending events are skipped (they are queued). The replay is paced and
takes at most 10000 events at a time; it prints how many matched, were
queued and were skipped.`,
		Args: cobra.NoArgs,
		RunE: runEventsReplay,
	}
	f := cmd.Flags()
	f.String("reference", "", "every event of this reference")
	f.String("status", "", "delivered or dead (with --since)")
	f.String("since", "", "events received at or after this time (RFC 3339, or a duration back from now)")
	f.String("until", "", "events received before this time (RFC 3339, or a duration back from now)")
	f.String("spool", "", "the spool, when the config has several (as /modulus/status names it)")
	adminFlags(cmd)
	return cmd
}

func runEventsReplay(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	var req replayRequest
	req.Reference, _ = f.GetString("reference")
	req.Status, _ = f.GetString("status")
	req.Since, _ = f.GetString("since")
	req.Until, _ = f.GetString("until")
	req.Spool, _ = f.GetString("spool")
	if _, err := replayQuery(req, time.Now()); err != nil {
		return err
	}
	body, _ := json.Marshal(req)
	ans, err := adminRequest(cmd, http.MethodPost, "/modulus/events/replay", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var rep replayAnswer
	if err := json.Unmarshal(ans, &rep); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %d matched, %d queued again, %d skipped (pending)\n", rep.Spool, rep.Matched, rep.Queued, rep.Skipped)
	if rep.Truncated {
		fmt.Fprintf(cmd.OutOrStdout(), "more events match than one replay takes (%d): run it again with a narrower filter for the rest\n", rep.Matched)
	}
	return nil
}
