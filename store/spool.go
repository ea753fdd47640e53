package store

import (
	"context"
	"errors"
	"time"
)

// Errors of a Spool.
var (
	// ErrNotFound: no pending event (or, for Replay, no dead letter) has the id.
	ErrNotFound = errors.New("spool: no such event")
	// ErrExists: Put was given an id that is already stored.
	ErrExists = errors.New("spool: an event with this id is already stored")
	// ErrClosed: the spool was closed.
	ErrClosed = errors.New("spool: closed")
)

// SpoolEvent is one verified webhook waiting to be delivered to the app, or
// a dead letter that gave up waiting.
type SpoolEvent struct {
	// ID is the event's stable identifier (the Webhook-Id header). The
	// gateway's ids sort by receipt time.
	ID string
	// Action and Reference are the payload's action (or status) and
	// reference (or transaction id), kept for listings and logs.
	Action    string
	Reference string
	// ActivationCode is the activation-code header that came with the
	// webhook, if any.
	ActivationCode string
	// Body is the decrypted payload, delivered verbatim.
	Body []byte
	// Received is when the webhook was acknowledged.
	Received time.Time
	// RetryFrom starts the redelivery window: Received, or the time of the
	// last replay of a dead letter.
	RetryFrom time.Time
	// Attempts counts the delivery attempts made so far.
	Attempts int
	// NextAttempt is when the event is next due for delivery.
	NextAttempt time.Time
	// LastError says why the last attempt failed (a status or a transport
	// error; never the body).
	LastError string
	// DeadAt is when the event was dead-lettered; zero while pending.
	DeadAt time.Time
	// DedupeKey, when set, is recorded as seen until DedupeUntil in the same
	// atomic, durable write as the event (see Spool.Put).
	DedupeKey   string
	DedupeUntil time.Time
	// Source is who made the event: "" for a webhook the provider sent, or
	// the name of the gateway part that made it (the ledger's
	// QRPH_EXPIRED events); deliveries say so in Webhook-Source.
	Source string
	// Reconciliation lists the payments ledger's flags on the event
	// (comma-separated, "" for none), delivered as Modulus-Reconciliation.
	Reconciliation string
	// DeliveredAt is when the app accepted the event, for an event kept
	// in the history after delivery (Archive); zero otherwise.
	DeliveredAt time.Time
	// Undecryptable, when not empty, says why the event's payment part
	// (Reference, ActivationCode and Body, sealed at rest) could not be
	// decrypted ("undecryptable: " and the reason: the key that sealed it
	// is not configured, or the record was altered). Those fields are then
	// empty; such an event must never be delivered (the Deliverer
	// dead-letters it).
	Undecryptable string

	// payment is the payment part as stored when it is sealed (see
	// spool_seal.go), so that a move that does not change it (Retry,
	// Bury, Replay) keeps it as it is.
	payment storedPayment
}

// SpoolStats is a spool's state at a glance, for the status page and metrics.
type SpoolStats struct {
	// Pending counts events awaiting delivery, in-flight ones included.
	Pending int
	// OldestPending is the receipt time of the oldest pending event; zero
	// when nothing is pending.
	OldestPending time.Time
	// DeadLetters counts dead-lettered events.
	DeadLetters int
	// Delivered counts the delivered events kept in the history.
	Delivered int
}

// Spool is the durable queue between acknowledging a webhook and the app
// accepting it: an event Put is never lost by a crash or restart, and stays
// until it is delivered (Complete) or dead-lettered (Bury).
//
// Times are passed in rather than read from a clock, so one implementation
// serves real and fake time alike. Implementations are safe for concurrent
// use; every write is durable when the method returns.
type Spool interface {
	// Put stores ev as pending, due at ev.NextAttempt. It returns only once
	// the event is durable (fsynced); concurrent Puts may share one commit.
	// When ev.DedupeKey is set, the key is recorded as seen until
	// ev.DedupeUntil in the same write, so a back end that also implements
	// Dedupe can keep Add's reservations volatile and never hold a durable
	// mark for an event it does not have.
	Put(ctx context.Context, ev SpoolEvent) error
	// Claim leases up to max pending events due at now (NextAttempt <= now),
	// earliest due first. A claimed event is not returned again until lease
	// has passed without a Complete, Retry or Bury, so the events of a
	// worker that died are retried.
	Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]SpoolEvent, error)
	// NextDue reports when the earliest pending event becomes claimable
	// (its due time, or the end of its lease); ok is false when nothing is
	// pending.
	NextDue(ctx context.Context) (due time.Time, ok bool, err error)
	// Complete removes a delivered event.
	Complete(ctx context.Context, id string) error
	// Retry records a failed attempt: the event stays pending with the given
	// attempt count and last error, due again at next. A back end that holds
	// claims in memory (the file spool) makes the event due at next even
	// when the write fails, so a full disk delays it by the backoff, not by
	// the claim's lease.
	Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	// Bury moves a pending event to the dead letters, recording the attempt
	// count, the time and the last error.
	Bury(ctx context.Context, id string, attempts int, at time.Time, lastErr string) error
	// Archive ends a delivered event like Complete but keeps it, sealed
	// like the pending ones, in the history (DeliveredAt = at) until
	// Purge removes it: it is listed by Events and can be replayed.
	Archive(ctx context.Context, id string, at time.Time) error
	// DeadLetters lists up to max dead letters in id order (for the
	// gateway's ids, oldest received first).
	DeadLetters(ctx context.Context, max int) ([]SpoolEvent, error)
	// Replay moves a dead letter, or a delivered event kept in the
	// history, back to pending, due at now, with a fresh redelivery window
	// (RetryFrom = now) and its original id; its attempt count is kept.
	// A pending event or an unknown id is ErrNotFound.
	Replay(ctx context.Context, id string, now time.Time) (SpoolEvent, error)
	// Events lists the events q selects, pending, delivered and dead,
	// newest id first, without their bodies.
	Events(ctx context.Context, q EventQuery) (EventPage, error)
	// Purge deletes up to max delivered events delivered before
	// deliveredBefore and dead letters dead before deadBefore (a zero time
	// purges none of that kind), and returns how many it deleted.
	Purge(ctx context.Context, deliveredBefore, deadBefore time.Time, max int) (int, error)
	// Stats reports the spool's state.
	Stats(ctx context.Context) (SpoolStats, error)
	// Close releases the spool; pending events stay stored.
	Close() error
}
