package proxy

// Header names on the wire, in one place for both directions and the docs.
const (
	// HeaderActivationCode is the provider's optional header on webhook
	// creation: it names the merchant and is echoed on every notification.
	HeaderActivationCode = "Activation-Code"

	// HeaderIdempotentReplayed marks a create-QR answer served again from
	// the idempotency cache, without an upstream call.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	// HeaderTransactionID carries the provider's transaction id of a
	// created QR (also on the PNG answer, which has no JSON body).
	HeaderTransactionID = "Modulus-Transaction-Id"
	// HeaderExpiresAt carries when a created QR stops being payable.
	HeaderExpiresAt = "Modulus-Expires-At"

	// HeaderWebhookID is the Standard Webhooks message id of a delivery,
	// stable per event across attempts.
	HeaderWebhookID = "Webhook-Id"
	// HeaderWebhookTimestamp is the delivery attempt's Unix time.
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	// HeaderWebhookAttempt numbers the delivery attempts from 1.
	HeaderWebhookAttempt = "Webhook-Attempt"
	// HeaderWebhookSignature is the Standard Webhooks signature list.
	HeaderWebhookSignature = "Webhook-Signature"
	// HeaderModulusActivationCode passes the provider's activation-code
	// header on to the app.
	HeaderModulusActivationCode = "Modulus-Activation-Code"
	// HeaderWebhookSource says who made a delivered event: "modulus" (a
	// webhook the provider sent) or "qrphgate" (an event the gateway made,
	// the payments ledger's QRPH_EXPIRED).
	HeaderWebhookSource = "Webhook-Source"
	// HeaderReconciliation lists the payments ledger's flags on a
	// delivered event (amount_mismatch, currency_mismatch,
	// unknown_reference, late_result), comma-separated; absent when none.
	HeaderReconciliation = "Modulus-Reconciliation"
)
