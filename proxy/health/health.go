// Package health is the engine of qrphgate's readiness endpoint: check
// results, the background poller that keeps the slow ones fresh, and the
// report that modulus_health answers with. It is plain Go: the Caddy
// adapter decides what to check and serves the report.
package health

import (
	"net/http"
	"time"
)

// Status is a check's (or the whole report's) state.
type Status string

// The states, from best to worst. Unavailable means this replica cannot do
// its job (a readiness probe should take it out of service); Degraded
// means it works but something needs attention, or the cause lies outside
// it (the provider is down: every replica sees that, and taking them all
// out of service would only stop the webhooks too).
const (
	OK          Status = "ok"
	Degraded    Status = "degraded"
	Unavailable Status = "unavailable"
)

func (s Status) rank() int {
	switch s {
	case OK:
		return 0
	case Degraded:
		return 1
	default:
		return 2
	}
}

// Worst returns the worst of the statuses (OK for none).
func Worst(ss ...Status) Status {
	w := OK
	for _, s := range ss {
		if s.rank() > w.rank() {
			w = s
		}
	}
	return w
}

// Result is one check's outcome.
type Result struct {
	Status  Status
	Message string
	// CheckedAt is when the outcome was known (for a check not run yet,
	// when it was first seen).
	CheckedAt time.Time
	// Took is how long the check ran (zero for one read from memory).
	Took time.Duration
	// Pending is true until a background check's first run ends.
	Pending bool
}

// Check is a result as the report shows it.
type Check struct {
	Status      Status    `json:"status"`
	Message     string    `json:"message,omitempty"`
	CheckedAt   time.Time `json:"checked_at"`
	AgeSeconds  float64   `json:"age_seconds"`
	TookSeconds float64   `json:"took_seconds,omitempty"`
}

// Report is the readiness answer: the worst status and every check.
type Report struct {
	Status Status           `json:"status"`
	Checks map[string]Check `json:"checks"`
}

// NewReport builds the report of results at now.
func NewReport(now time.Time, results map[string]Result) Report {
	r := Report{Status: OK, Checks: make(map[string]Check, len(results))}
	for name, res := range results {
		r.Status = Worst(r.Status, res.Status)
		r.Checks[name] = Check{
			Status: res.Status, Message: res.Message, CheckedAt: res.CheckedAt.UTC(),
			AgeSeconds:  max(now.Sub(res.CheckedAt), 0).Seconds(),
			TookSeconds: res.Took.Seconds(),
		}
	}
	return r
}

// HTTPStatus is the answer's status: 200 while the replica can serve (ok
// or degraded), 503 when it cannot.
func (r Report) HTTPStatus() int {
	if r.Status == Unavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}
