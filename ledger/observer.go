package ledger

// Observer receives the ledger's measurements; the Caddy adapter turns
// them into Prometheus metrics. Every label comes from a fixed set
// (Statuses, Flags, the op and outcome names below), never from payment
// data.
type Observer interface {
	// Transition records a transaction entering status (pending when its
	// QR is recorded).
	Transition(status string)
	// Flagged records a reconciliation flag raised on a result.
	Flagged(flag string)
	// StoreFailed records a store call that failed: op is record,
	// reconcile, expire, emit, purge or lookup.
	StoreFailed(op string)
	// ExpiryEvent records a QRPH_EXPIRED event handed to the spool
	// ("emitted") or not ("failed").
	ExpiryEvent(outcome string)
	// Swept records one expiry pass.
	Swept()
	// Purged records n transactions deleted by the retention.
	Purged(n int)
}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) Transition(string)  {}
func (NopObserver) Flagged(string)     {}
func (NopObserver) StoreFailed(string) {}
func (NopObserver) ExpiryEvent(string) {}
func (NopObserver) Swept()             {}
func (NopObserver) Purged(int)         {}

var _ Observer = NopObserver{}
