package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
)

// Schema names the JSON report's format. It changes only when a field is
// removed or changes meaning; new fields may be added within a version.
const Schema = "qrphgate.preflight/v1"

// Status is a check's outcome.
type Status string

// The outcomes, from best to worst. Only Fail makes the preflight fail.
// Skip is a check that was not made, for the reason it gives (an earlier
// check's failure made it pointless or unsafe); it fails nothing by itself.
const (
	OK   Status = "ok"
	Skip Status = "skip"
	Warn Status = "warn"
	Fail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Verdict is the outcome of one check: what was found and, unless it is
// OK, what to do about it.
type Verdict struct {
	Status Status
	Reason string
	Fix    string
	// Elapsed is the time the check measured (an fsync, a round trip);
	// zero when it measures none.
	Elapsed time.Duration
}

// Pass is an OK verdict.
func Pass(reason string) Verdict { return Verdict{Status: OK, Reason: reason} }

// Warning is a verdict that does not fail the preflight.
func Warning(reason, fix string) Verdict { return Verdict{Status: Warn, Reason: reason, Fix: fix} }

// Failure is a verdict that fails the preflight.
func Failure(reason, fix string) Verdict { return Verdict{Status: Fail, Reason: reason, Fix: fix} }

// Skipped is the verdict of a check that was not made: reason says why,
// fix what lets it run.
func Skipped(reason, fix string) Verdict { return Verdict{Status: Skip, Reason: reason, Fix: fix} }

// Timed returns v with the time it measured.
func (v Verdict) Timed(d time.Duration) Verdict {
	v.Elapsed = d
	return v
}

// Worst combines verdicts into one: the worst status, the reasons (and the
// fixes of the verdicts that are not OK) joined with "; ". It is OK with
// the given reason when there are no verdicts.
func Worst(okReason string, vs ...Verdict) Verdict {
	if len(vs) == 0 {
		return Pass(okReason)
	}
	out := Verdict{Status: OK}
	var reasons, fixes []string
	for _, v := range vs {
		if v.Status.rank() > out.Status.rank() {
			out.Status = v.Status
		}
		reasons = append(reasons, v.Reason)
		if v.Status != OK && v.Fix != "" {
			fixes = append(fixes, v.Fix)
		}
		out.Elapsed = max(out.Elapsed, v.Elapsed)
	}
	out.Reason = strings.Join(reasons, "; ")
	out.Fix = strings.Join(fixes, "; ")
	return out
}

// Check is one line of the checklist.
type Check struct {
	// ID names the check; stable across versions (see docs/to-production.md).
	ID string `json:"id"`
	// Subject is what was checked (a handler and its site, a Redis
	// server); empty for checks of the whole process.
	Subject string `json:"subject,omitempty"`
	Status  Status `json:"status"`
	Reason  string `json:"reason"`
	// Fix is what to do; empty when the status is ok.
	Fix string `json:"fix,omitempty"`
	// ElapsedMS is the time the check measured, in milliseconds.
	ElapsedMS *float64 `json:"elapsed_ms,omitempty"`
}

// TestPayment is the QR that --test-payment created.
type TestPayment struct {
	ID        string `json:"id"`
	Reference string `json:"merchant_reference_number"`
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	// Via says who sent it: "gateway" (the running gateway's modulus_api,
	// whose ledger records it) or "preflight" (preflight's own copy of the
	// outbound engine, when no gateway answered).
	Via string `json:"via"`
	// StatusCommand is the command that shows the payment's status.
	StatusCommand string `json:"status_command"`
	// QRImage is the path of the QR's PNG, written for a banking app to
	// scan; empty when the answer held no PNG.
	QRImage string `json:"qr_image,omitempty"`
}

// Summary counts the checks by status.
type Summary struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	// Skip counts the checks that were not made.
	Skip int `json:"skip"`
}

// Report is the whole checklist.
type Report struct {
	Schema  string `json:"schema"`
	Config  string `json:"config"`
	Adapter string `json:"adapter"`
	// Live is true when the online checks ran (--live).
	Live        bool         `json:"live"`
	Checks      []Check      `json:"checks"`
	TestPayment *TestPayment `json:"test_payment,omitempty"`
	Summary     Summary      `json:"summary"`
	// Passed is true when no check failed (the exit status is then 0).
	Passed bool `json:"passed"`
}

// NewReport starts an empty report.
func NewReport(config, adapter string, live bool) *Report {
	return &Report{Schema: Schema, Config: config, Adapter: adapter, Live: live, Checks: []Check{}, Passed: true}
}

// Add appends a check.
func (r *Report) Add(id, subject string, v Verdict) {
	c := Check{ID: id, Subject: subject, Status: v.Status, Reason: v.Reason, Fix: v.Fix}
	if v.Status == OK {
		c.Fix = ""
	}
	if v.Elapsed > 0 {
		ms := elapsedMS(v.Elapsed)
		c.ElapsedMS = &ms
	}
	r.Checks = append(r.Checks, c)
	switch v.Status {
	case OK:
		r.Summary.OK++
	case Skip:
		r.Summary.Skip++
	case Warn:
		r.Summary.Warn++
	default:
		r.Summary.Fail++
		r.Passed = false
	}
}

// Find returns the checks with the given id, in order.
func (r *Report) Find(id string) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// Scrub removes the given secrets from every text of the report: no
// check is meant to print one, and this makes sure.
func (r *Report) Scrub(sc *crypto.Scrubber) {
	for i := range r.Checks {
		c := &r.Checks[i]
		c.Subject, c.Reason, c.Fix = sc.Scrub(c.Subject), sc.Scrub(c.Reason), sc.Scrub(c.Fix)
	}
	if p := r.TestPayment; p != nil {
		p.StatusCommand = sc.Scrub(p.StatusCommand)
	}
}

// WriteJSON writes the report as indented JSON (the Schema format).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes the checklist for a terminal: a heading, one line per
// check (status, id, subject, reason, fix), the test payment if any, and
// the summary. Measured times are in the reasons (and in elapsed_ms of
// the JSON form).
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := "offline checks (add --live for the provider and the certificate)"
	if r.Live {
		mode = "offline and live checks"
	}
	fmt.Fprintf(&b, "qrphgate preflight of %s (%s): %s\n", r.Config, r.Adapter, mode)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.ID))
	}
	for _, c := range r.Checks {
		line := c.Reason
		if c.Subject != "" {
			line = "[" + c.Subject + "] " + line
		}
		if c.Fix != "" {
			line += " -- fix: " + c.Fix
		}
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", c.Status, width, c.ID, line)
	}
	if p := r.TestPayment; p != nil {
		fmt.Fprintf(&b, "\ntest payment: QR %s for %s %s (reference %s), created through %s.\n", p.ID, p.Currency, p.Amount, p.Reference, p.Through())
		if p.QRImage != "" {
			fmt.Fprintf(&b, "  scan it with a banking app: %s\n", p.QRImage)
		}
		fmt.Fprintf(&b, "  watch its status: %s\n", p.StatusCommand)
	}
	s := r.Summary
	verdict := "Nothing fails"
	if !r.Passed {
		verdict = "NOT READY: fix the fail lines"
	}
	skipped := ""
	if s.Skip > 0 {
		skipped = fmt.Sprintf(", %d skipped", s.Skip)
	}
	fmt.Fprintf(&b, "\n%d checks: %d ok, %d warn, %d fail%s. %s.\n", len(r.Checks), s.OK, s.Warn, s.Fail, skipped, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// Through says in words who created the QR (Via).
func (p *TestPayment) Through() string {
	if p.Via == "gateway" {
		return "the running gateway"
	}
	return "preflight's own outbound engine (no gateway listens at the modulus_api address)"
}
