package inbound

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// Sources of a delivered event, the Webhook-Source header.
const (
	// SourceModulus: a webhook the provider sent.
	SourceModulus = "modulus"
	// SourceGateway: an event qrphgate made itself (the payments ledger's
	// QRPH_EXPIRED).
	SourceGateway = "qrphgate"
)

// sourceOf is the Webhook-Source of ev.
func sourceOf(ev store.SpoolEvent) string {
	if ev.Source == "" {
		return SourceModulus
	}
	return ev.Source
}

// GatewayEvent is an event the gateway makes itself for the app.
type GatewayEvent struct {
	// Key and At identify the event: its Webhook-Id derives from them
	// (GatewayEventID), so emitting it again, here or on another replica,
	// finds it queued instead of queuing it twice.
	Key string
	At  time.Time
	// Action and Reference are kept for listings and logs.
	Action, Reference string
	// Body is delivered verbatim.
	Body []byte
}

// GatewayEventID is the Webhook-Id of the gateway event (key, at): an
// event id ("evt_" and 26 characters, sorting by at) whose last 80 bits
// are a digest of key instead of random.
func GatewayEventID(at time.Time, key string) string {
	var raw [16]byte
	sum := sha256.Sum256([]byte("qrphgate gateway event\x00" + key))
	copy(raw[6:], sum[:10])
	return formatEventID(at, raw)
}

// Emit queues a gateway event in the spool, to be delivered like the
// provider's webhooks (same URL, signature and retries), marked
// Webhook-Source: qrphgate. It returns once the event is durable; an event
// already queued (or dead-lettered) is left as it is.
func (d *Deliverer) Emit(ctx context.Context, ge GatewayEvent) (string, error) {
	now := d.clock.Now()
	ev := store.SpoolEvent{
		ID: GatewayEventID(ge.At, ge.Key), Action: ge.Action, Reference: ge.Reference, Body: ge.Body,
		Received: now, RetryFrom: now, NextAttempt: now, Source: SourceGateway,
	}
	err := d.spool.Put(ctx, ev)
	if errors.Is(err, store.ErrExists) {
		return ev.ID, nil
	}
	if err != nil {
		return "", err
	}
	d.Wake()
	return ev.ID, nil
}
