package main

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"
)

// Order statuses.
const (
	pending  = "PENDING"
	paid     = "PAID"
	declined = "DECLINED"
)

// order is one checkout.
type order struct {
	Reference     string    `json:"reference"`
	Amount        string    `json:"amount"`
	Currency      string    `json:"currency"`
	Status        string    `json:"status"`
	TransactionID string    `json:"transactionId"`
	ExpiresAt     string    `json:"expiresAt"`
	CreatedAt     time.Time `json:"createdAt"`
	// WebhookIDs are the deliveries applied to this order.
	WebhookIDs []string `json:"webhookIds"`
	// QRBody is the base64 PNG the sidecar answered.
	QRBody string `json:"-"`
}

// orders is the in-memory store: the orders by reference and every
// Webhook-Id already applied. A real app keeps both in its database and
// records the id in the same transaction as the order's change.
type orders struct {
	mu    sync.Mutex
	byRef map[string]*order
	seen  map[string]bool
}

func newOrders() *orders {
	return &orders{byRef: map[string]*order{}, seen: map[string]bool{}}
}

// newReference makes a merchantReferenceNumber (letters, digits, hyphens).
func newReference() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "ORDER-" + hex.EncodeToString(b)
}

func (s *orders) add(o *order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byRef[o.Reference] = o
}

// get returns a copy of the order.
func (s *orders) get(ref string) (order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byRef[ref]
	if !ok {
		return order{}, false
	}
	c := *o
	c.WebhookIDs = append([]string{}, o.WebhookIDs...)
	return c, true
}

// list returns copies of every order, newest first.
func (s *orders) list() []order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]order, 0, len(s.byRef))
	for _, o := range s.byRef {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out
}

// applyResult says what apply did.
type applyResult int

const (
	applied applyResult = iota
	duplicate
	unknownOrder
)

// apply records one verified delivery: a Webhook-Id seen before changes
// nothing; otherwise QRPH_SUCCESS marks the order paid and QRPH_DECLINED
// declined (a paid order stays paid: deliveries can arrive out of order).
func (s *orders) apply(webhookID, action, ref string) applyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[webhookID] {
		return duplicate
	}
	s.seen[webhookID] = true
	o, ok := s.byRef[ref]
	if !ok {
		return unknownOrder
	}
	o.WebhookIDs = append(o.WebhookIDs, webhookID)
	switch {
	case action == "QRPH_SUCCESS":
		o.Status = paid
	case action == "QRPH_DECLINED" && o.Status != paid:
		o.Status = declined
	}
	return applied
}
