package sandbox

import (
	"context"
	"sync"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// Bounds on what the simulator keeps in memory. The oldest QRs and inbox
// entries are dropped first; a full webhook registry or delivery queue
// refuses more.
const (
	maxQRs          = 1000
	maxWebhooks     = 100
	maxInbox        = 200
	maxInflight     = 256
	maxAttemptsKept = 16
)

// QR statuses as the web page shows them.
const (
	StatusPending  = "PENDING"
	StatusPaid     = "PAID"
	StatusDeclined = "DECLINED"
	StatusExpired  = "EXPIRED"
)

// Store is the simulator's account: the QRs created, the registered
// webhooks, the webhook deliveries under way, the demo inbox and the rate
// windows. It outlives a Simulator (caddymodule keeps one per secret key in
// a UsagePool, so a config reload loses nothing) and owns the delivery
// goroutines, which stop when Close is called.
type Store struct {
	clk    clock.Clock
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	qrs       map[string]*qrRecord
	qrOrder   []string          // creation order, for listing and eviction
	byPayload map[string]string // EMVCo text → transaction id
	webhooks  map[string]*webhook
	hookOrder []string
	inbox     []InboxEntry
	inboxSeen map[string]int // Webhook-Id → deliveries received
	inboxSeq  int
	// budget holds the provider's rate windows ("qr", "webhooks"): the
	// same exact sliding log the gateway paces itself with.
	budget   *store.Memory
	inflight int
}

// NewStore returns an empty Store on clk (clock.Real() when nil).
func NewStore(clk clock.Clock) *Store {
	if clk == nil {
		clk = clock.Real()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		clk: clk, ctx: ctx, cancel: cancel,
		qrs: make(map[string]*qrRecord), byPayload: make(map[string]string),
		webhooks: make(map[string]*webhook), inboxSeen: make(map[string]int),
		budget: store.NewMemory(clk),
	}
}

// Close stops every delivery goroutine (a sleeping retry is abandoned, an
// attempt in flight is cancelled) and waits for them. It is idempotent.
func (st *Store) Close() error {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	st.cancel()
	st.wg.Wait()
	return nil
}

// Destruct implements caddy.Destructor's method set without importing
// Caddy, so a *Store can live in a caddy.UsagePool directly.
func (st *Store) Destruct() error { return st.Close() }

// qrRecord is one created QR and what happened to it.
type qrRecord struct {
	ID             string
	Reference      string
	Amount         policy.Centavos
	Currency       string
	ActivationCode string
	Payload        string
	PNG            []byte
	CreatedAt      time.Time
	ExpiresAt      time.Time
	Status         string // PENDING, PAID or DECLINED; EXPIRED is derived
	Events         []*event
}

func (q *qrRecord) status(now time.Time) string {
	if q.Status == StatusPending && !now.Before(q.ExpiresAt) {
		return StatusExpired
	}
	return q.Status
}

// event is one simulated payment outcome and its webhook deliveries.
type event struct {
	ID         string
	Action     string
	UseCase    string
	At         time.Time
	Deliveries []*delivery
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"    // every attempt failed
	DeliveryCancelled = "cancelled" // webhook deleted or disabled, or simulator stopped
)

type delivery struct {
	WebhookID string
	URL       string
	State     string
	NextAt    time.Time
	Attempts  []Attempt
}

// Attempt is one POST of a webhook to a callback URL.
type Attempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status,omitempty"` // HTTP status, 0 when none came back
	Error  string    `json:"error,omitempty"`  // transport failure, without secrets
}

// webhook is a registered callback.
type webhook struct {
	ID             string
	Action         string
	Status         string
	CallbackURL    string
	ActivationCode string // the activation-code header given at creation, echoed on deliveries
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// addQR stores q, dropping the oldest QR when full. Callers hold st.mu.
func (st *Store) addQR(q *qrRecord) {
	if len(st.qrOrder) >= maxQRs {
		old := st.qrOrder[0]
		st.qrOrder = st.qrOrder[1:]
		if r := st.qrs[old]; r != nil {
			delete(st.byPayload, r.Payload)
		}
		delete(st.qrs, old)
	}
	st.qrs[q.ID] = q
	st.byPayload[q.Payload] = q.ID
	st.qrOrder = append(st.qrOrder, q.ID)
}

// findQR looks a QR up by its raw EMVCo text or its transaction id.
// Callers hold st.mu.
func (st *Store) findQR(qrBody string) *qrRecord {
	if id, ok := st.byPayload[qrBody]; ok {
		return st.qrs[id]
	}
	return st.qrs[qrBody]
}
