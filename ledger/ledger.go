// Package ledger is qrphgate's payments ledger: every QR created through
// modulus_api, from creation to its result (the webhook modulus_webhook
// received) or its expiry, kept for the app (a status it can poll), the
// operator (listings, counts, CSV) and the auditor (cross-checks of every
// result against its QR).
//
// It is plain Go: the back ends are store.Ledger's (memory, file, Redis),
// time comes from an injected clock, and the Caddy adapter wires the
// engine to the outbound and inbound sides through their own small
// interfaces. Nothing here may fail a payment: every error is logged and
// counted here, and callers carry on without the ledger.
package ledger

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Statuses of a transaction.
const (
	StatusPending  = "pending"
	StatusPaid     = "paid"
	StatusDeclined = "declined"
	StatusExpired  = "expired"
)

// Statuses lists every status, for counts and metrics.
var Statuses = []string{StatusPending, StatusPaid, StatusDeclined, StatusExpired}

// Reconciliation flags: what a cross-check of a result found.
const (
	// FlagAmountMismatch: the result states another amount than its QR's.
	FlagAmountMismatch = "amount_mismatch"
	// FlagCurrencyMismatch: the result states another currency.
	FlagCurrencyMismatch = "currency_mismatch"
	// FlagUnknownReference: the result matches no QR the ledger knows.
	FlagUnknownReference = "unknown_reference"
	// FlagLateResult: the result came after its QR expired (expiresAt
	// plus the grace).
	FlagLateResult = "late_result"
)

// Flags lists every flag, for metrics.
var Flags = []string{FlagAmountMismatch, FlagCurrencyMismatch, FlagUnknownReference, FlagLateResult}

// Defaults of the settings.
const (
	DefaultGrace     = time.Hour
	DefaultRetention = 90 * 24 * time.Hour
)

// Timings of the background work.
const (
	// PurgeEvery is how often Run applies the retention.
	PurgeEvery = time.Hour
	// emitLease is how long a replica holds an expired QR's event for
	// itself while it hands it to the spool; after it, another replica (or
	// this one, on its next sweep) tries again.
	emitLease = time.Minute
	// sweepBatch is how many due records one store call returns.
	sweepBatch = 100
	// purgeBatch is how many records one store call deletes.
	purgeBatch = 500
	// maxTries bounds the compare-and-swap retries of one change.
	maxTries = 8
)

// ErrNotFound is the answer of a lookup that matches no transaction.
var ErrNotFound = errors.New("ledger: no such transaction")

// ErrBadQuery is the answer to a listing that cannot be made (an unknown
// status, a cursor no listing returned).
var ErrBadQuery = errors.New("ledger: bad query")

// Config sets up a Ledger.
type Config struct {
	// Store keeps the records. Required.
	Store store.Ledger

	// Clock is the time source; clock.Real() when nil.
	Clock clock.Clock

	// Logger receives the ledger's logs; zap.NewNop() when nil.
	Logger *zap.Logger

	// Observer receives transitions, flags and failures (metrics);
	// NopObserver when nil.
	Observer Observer

	// CallTimeout bounds Record and Reconcile, whatever the store does
	// (see bounded); DefaultCallTimeout when zero.
	CallTimeout time.Duration
}

// Settings are what a config reload may change; see Configure.
type Settings struct {
	// Grace is how long after its expiresAt a QR with no result becomes
	// expired (expiry_grace); zero expires it at expiresAt.
	Grace time.Duration

	// Retention is how long a transaction is kept, from its creation
	// (ledger_retention); DefaultRetention when zero.
	Retention time.Duration

	// ExpiryEvents sends a QRPH_EXPIRED event to the app for every QR that
	// expires (expiry_events on), through Emitter.
	ExpiryEvents bool

	// Emitter queues expiry events for delivery (the webhook spool); with
	// ExpiryEvents and no Emitter, this process expires nothing (a
	// replica that has one does).
	Emitter Emitter
}

// DefaultSettings are the settings before Configure.
func DefaultSettings() Settings {
	return Settings{Grace: DefaultGrace, Retention: DefaultRetention}
}

// Ledger is the payments ledger engine. It is safe for concurrent use, by
// one process and (on a shared store) by every replica.
type Ledger struct {
	store    store.Ledger
	clock    clock.Clock
	log      *zap.Logger
	obs      Observer
	settings atomic.Pointer[Settings]

	callTimeout time.Duration
	abandoned   atomic.Int64 // calls given up on that have not returned yet

	warnOnce sync.Once // no emitter while expiry events are on
}

// New checks cfg and returns a Ledger with DefaultSettings.
func New(cfg Config) (*Ledger, error) {
	if cfg.Store == nil {
		return nil, errors.New("ledger: a store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	l := &Ledger{store: cfg.Store, clock: cfg.Clock, log: cfg.Logger, obs: cfg.Observer, callTimeout: cfg.CallTimeout}
	l.Configure(DefaultSettings())
	return l, nil
}

// Configure replaces the settings; work under way finishes with the old.
func (l *Ledger) Configure(s Settings) {
	if s.Retention <= 0 {
		s.Retention = DefaultRetention
	}
	if s.Grace < 0 {
		s.Grace = 0
	}
	l.settings.Store(&s)
}

// Settings returns the settings in force.
func (l *Ledger) Settings() Settings { return *l.settings.Load() }

// failed logs and counts a store failure; the caller goes on without the
// ledger.
func (l *Ledger) failed(op string, err error, fields ...zap.Field) {
	l.obs.StoreFailed(op)
	l.log.Warn("payments ledger unavailable; the payment goes on without it",
		append(fields, zap.String("op", op), proxy.LogString("error", err.Error()))...)
}
