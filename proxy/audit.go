package proxy

// The audit trail: both directions report what an auditor must be able to
// reconstruct (who created which QR, which webhooks were accepted or
// refused, what was delivered, dead-lettered, replayed or purged) through
// one small interface, which the Caddy adapter writes to the trail
// (package audit). What identifies a payment in it is the provider's
// transaction id and the merchant's reference; never an amount, a body, a
// key, a token or a signature.

// Audit events, the "event" of a trail line.
const (
	AuditQRCreated        = "qr_created"        // a QR the provider created (not an idempotent replay)
	AuditWebhookAccepted  = "webhook_accepted"  // stored durably and acknowledged
	AuditWebhookDuplicate = "webhook_duplicate" // acknowledged, not stored again
	AuditWebhookRefused   = "webhook_refused"   // answered with an error; Code says which
	AuditDelivery         = "delivery"          // one delivery attempt's outcome
	AuditDeadLetter       = "dead_letter"       // an event given up on; Code is the reason
	AuditReplay           = "replay"            // an event queued again by an operator
	AuditPurge            = "purge"             // history removed by retention
)

// AuditEvent is one line of the trail. Only the fields that apply are set.
type AuditEvent struct {
	// Event is one of the Audit* names (the line's "event").
	Event string `json:"-"`
	// TransactionID and Reference identify the payment.
	TransactionID string `json:"transaction_id,omitempty"`
	Reference     string `json:"reference,omitempty"`
	// EventID is the webhook's Webhook-Id; Action its action.
	EventID string `json:"event_id,omitempty"`
	Action  string `json:"action,omitempty"`
	// Code is a refusal's error code or a dead letter's reason.
	Code string `json:"code,omitempty"`
	// Outcome, Status and Attempt describe a delivery attempt.
	Outcome string `json:"outcome,omitempty"`
	Status  int    `json:"status,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Remote is the client's address: the webhook's sender, or the admin
	// request that replayed; "retention" for the purge job.
	Remote string `json:"remote,omitempty"`
	// Spool names the spool of a delivery, dead letter, replay or purge.
	Spool string `json:"spool,omitempty"`
	// Delivered and Dead count what a purge removed.
	Delivered int `json:"delivered,omitempty"`
	Dead      int `json:"dead,omitempty"`
}

// Auditor receives audit events. Audit must not block or fail the
// caller: a trail that cannot keep up drops and counts, and never fails a
// payment.
type Auditor interface {
	Audit(AuditEvent)
}

// NopAuditor discards everything (no audit_log).
type NopAuditor struct{}

// Audit implements Auditor.
func (NopAuditor) Audit(AuditEvent) {}

var _ Auditor = NopAuditor{}
