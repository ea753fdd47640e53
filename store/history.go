package store

import (
	"errors"
	"fmt"
	"time"
)

// The spool's history: every event, pending, delivered (kept by Archive)
// or dead, listed by Events with its metadata, never its body.

// Event statuses, as the history lists them (EventQuery.Status).
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusDead      = "dead"
)

// Status is the event's place in the spool: pending, delivered (kept in
// the history) or dead.
func (ev *SpoolEvent) Status() string {
	switch {
	case !ev.DeadAt.IsZero():
		return StatusDead
	case !ev.DeliveredAt.IsZero():
		return StatusDelivered
	}
	return StatusPending
}

// EventQuery selects events for Spool.Events. Zero fields do not filter.
type EventQuery struct {
	// Status is one of the event statuses, or "" for all.
	Status string
	// Reference must match exactly (by its blind index when sealed).
	Reference string
	// Since (inclusive) and Until (exclusive) bound Received.
	Since, Until time.Time
	// Limit is the page size (at least 1).
	Limit int
	// Cursor continues a listing where the page that returned it ended:
	// the id of the last event it examined.
	Cursor string
}

// EventPage is one page of Spool.Events, newest id first.
type EventPage struct {
	// Events carry their metadata and, when it could be decrypted, their
	// reference and activation code; never their body.
	Events []SpoolEvent
	// Next is the cursor of the following page; "" on the last one. A
	// page may hold fewer than Limit events and still have a Next: a
	// listing examines at most MaxEventScan events per page.
	Next string
}

// MaxEventScan bounds the events one Events call examines, so a filter
// that matches little cannot make one call walk the whole history.
const MaxEventScan = 10000

// Check validates a query: a positive limit and a known status.
func (q EventQuery) Check() error {
	if q.Limit < 1 {
		return errors.New("spool: a listing needs a limit of at least 1")
	}
	switch q.Status {
	case "", StatusPending, StatusDelivered, StatusDead:
		return nil
	}
	return fmt.Errorf("spool: unknown status %q (want pending, delivered or dead)", q.Status)
}

// selects reports whether ev (its payment part closed) is one q lists.
func (q EventQuery) selects(sl *Sealer, ev *SpoolEvent) bool {
	if q.Status != "" && ev.Status() != q.Status {
		return false
	}
	if !q.Since.IsZero() && ev.Received.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !ev.Received.Before(q.Until) {
		return false
	}
	return q.Reference == "" || ev.matchesReference(sl, q.Reference)
}

// listed is ev as Events returns it: the body dropped, the reference and
// activation code opened when they can be.
func listed(sl *Sealer, ev SpoolEvent) SpoolEvent {
	if ev.payment.sealed != nil && ev.Undecryptable == "" {
		openPayment(sl, &ev, ev.payment.sealed, ev.payment.refBlind)
	}
	ev.Body = nil
	return ev
}
