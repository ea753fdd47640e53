package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/store"
)

func init() {
	addAdminRoute("/modulus/events", handleEvents)
	addAdminRoute("/modulus/events/replay", handleEventsReplay)
}

const (
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
)

// eventEntry is one event of GET /modulus/events: metadata only, never
// the payload.
type eventEntry struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`
	Action         string     `json:"action"`
	Reference      string     `json:"reference,omitempty"`
	Source         string     `json:"source"`
	Received       time.Time  `json:"received"`
	Attempts       int        `json:"attempts"`
	NextAttempt    *time.Time `json:"next_attempt,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	DeadAt         *time.Time `json:"dead_at,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	Reconciliation string     `json:"reconciliation,omitempty"`
	// Undecryptable says why the event's payment part cannot be read
	// (its at-rest key is not configured); the reference is then unknown.
	Undecryptable string `json:"undecryptable,omitempty"`
}

func toEventEntry(ev store.SpoolEvent) eventEntry {
	e := eventEntry{ID: ev.ID, Status: ev.Status(), Action: ev.Action, Reference: ev.Reference, Source: ev.Source,
		Received: ev.Received, Attempts: ev.Attempts, LastError: ev.LastError, Reconciliation: ev.Reconciliation,
		Undecryptable: ev.Undecryptable}
	if e.Source == "" {
		e.Source = inbound.SourceModulus
	}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	switch e.Status {
	case store.StatusPending:
		e.NextAttempt = at(ev.NextAttempt)
	case store.StatusDelivered:
		e.DeliveredAt = at(ev.DeliveredAt)
	case store.StatusDead:
		e.DeadAt = at(ev.DeadAt)
	}
	return e
}

// eventsPage is the answer of GET /modulus/events.
type eventsPage struct {
	Spool  string       `json:"spool"`
	Events []eventEntry `json:"events"`
	// NextCursor continues the listing (&cursor=); absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// eventsWorker picks the spool a request names (spool=), or the only one.
func eventsWorker(name string) (*webhookWorker, error) {
	ws := liveWebhookWorkers()
	if name == "" {
		switch len(ws) {
		case 0:
			return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no modulus_webhook is running")}
		case 1:
			return ws[0], nil
		}
		names := make([]string, len(ws))
		for i, w := range ws {
			names[i] = w.name
		}
		return nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("several spools run: name one with spool= (%s)", strings.Join(names, ", "))}
	}
	for _, w := range ws {
		if w.name == name {
			return w, nil
		}
	}
	return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no running spool %q", name)}
}

// eventsQuery reads a listing's or a replay's filter. since and until
// take an RFC 3339 time or a duration back from now.
func eventsQuery(status, reference, since, until string, now time.Time) (store.EventQuery, error) {
	q := store.EventQuery{Status: status, Reference: reference, Limit: 1}
	for _, p := range []struct {
		name, raw string
		into      *time.Time
	}{{"since", since, &q.Since}, {"until", until, &q.Until}} {
		if p.raw == "" {
			continue
		}
		t, err := pointInTime(p.raw, now)
		if err != nil {
			return q, fmt.Errorf("%s must be an RFC 3339 time or a duration back from now, such as 24h: %w", p.name, err)
		}
		*p.into = t
	}
	return q, q.Check()
}

// handleEvents serves GET /modulus/events?reference=&status=&since=
// &until=&limit=&cursor=&spool=: a spool's events (pending, delivered and
// kept, dead), newest first, one page at a time; metadata only.
func handleEvents(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethodNotAllowed}
	}
	v := r.URL.Query()
	q, err := eventsQuery(v.Get("status"), v.Get("reference"), v.Get("since"), v.Get("until"), time.Now())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	q.Limit, q.Cursor = defaultEventsLimit, v.Get("cursor")
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxEventsLimit {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("limit must be 1 to %d", maxEventsLimit)}
		}
		q.Limit = n
	}
	wk, err := eventsWorker(v.Get("spool"))
	if err != nil {
		return err
	}
	page, err := wk.spool.Events(r.Context(), q)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("listing the events of %s: %w", wk.name, err)}
	}
	out := eventsPage{Spool: wk.name, Events: make([]eventEntry, 0, len(page.Events)), NextCursor: page.Next}
	for _, ev := range page.Events {
		out.Events = append(out.Events, toEventEntry(ev))
	}
	return writeAdminJSON(w, http.StatusOK, out)
}

// replayRequest is the body of POST /modulus/events/replay.
type replayRequest struct {
	Spool     string `json:"spool,omitempty"`
	Reference string `json:"reference,omitempty"`
	Status    string `json:"status,omitempty"`
	Since     string `json:"since,omitempty"`
	Until     string `json:"until,omitempty"`
}

// replayAnswer is the answer of POST /modulus/events/replay.
type replayAnswer struct {
	Spool string `json:"spool"`
	inbound.ReplayReport
}

// handleEventsReplay serves POST /modulus/events/replay: the delivered
// and dead events a filter selects (a reference, or a time range and a
// status) go back to the queue with their original Webhook-Id, paced; the
// answer says how many matched, were queued and were skipped (pending).
func handleEventsReplay(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethodNotAllowed}
	}
	var req replayRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("the body must be a JSON object of reference, status, since, until and spool: %w", err)}
	}
	q, err := replayQuery(req, time.Now())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	wk, err := eventsWorker(req.Spool)
	if err != nil {
		return err
	}
	rep, err := wk.deliverer.ReplayMatching(r.Context(), q, r.RemoteAddr)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("replaying events of %s (%d queued before the failure): %w", wk.name, rep.Queued, err)}
	}
	return writeAdminJSON(w, http.StatusOK, replayAnswer{Spool: wk.name, ReplayReport: rep})
}

// replayQuery checks a replay's filter: a reference, or a time range
// (since) and a status; pending events are queued already.
func replayQuery(req replayRequest, now time.Time) (store.EventQuery, error) {
	switch {
	case req.Status == store.StatusPending:
		return store.EventQuery{}, errors.New("status must be delivered or dead: pending events are queued already")
	case req.Reference == "" && (req.Since == "" || req.Status == ""):
		return store.EventQuery{}, errors.New("a replay needs a reference, or a time range (since, and until if you like) and a status (delivered or dead)")
	}
	return eventsQuery(req.Status, req.Reference, req.Since, req.Until, now)
}

// eventsURI builds the listing's URI for the command line.
func eventsURI(v url.Values) string { return "/modulus/events?" + v.Encode() }
