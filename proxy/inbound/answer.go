package inbound

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy"
)

// What the app's answer to a delivery does to the event, beyond "2xx ends
// it, anything else is retried": the Standard Webhooks conventions. A 410
// Gone dead-letters the event at once; a 429 or 503 with Retry-After is not
// retried before it (the backoff maximum caps the wait, so a huge value
// cannot park the event beyond the usual spacing).

// Dead-letter reasons, the "reason" label of the dead-letter metric.
const (
	// DeadLetterExpired: redeliver_for passed without a 2xx.
	DeadLetterExpired = "expired"
	// DeadLetterGone: the app answered 410 Gone.
	DeadLetterGone = "gone"
	// DeadLetterUndecryptable: the event's payment part, sealed at rest,
	// could not be decrypted (its key is not configured, or the record
	// was altered); it was never delivered.
	DeadLetterUndecryptable = "undecryptable"
)

// DeadLetterReasons lists every reason, for pre-creating metrics.
var DeadLetterReasons = []string{DeadLetterExpired, DeadLetterGone, DeadLetterUndecryptable}

// goneDetail is a 410's last error, as the dead-letter list shows it.
const goneDetail = "HTTP 410 Gone: the app refused the event; dead-lettered without retrying"

// appRetryAfter is the wait the app asked for: Retry-After on a 429 or 503
// answer (seconds or an HTTP date), 0 when there is none.
func appRetryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	d, _ := proxy.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	return d
}

// retryDelay is the wait before retry number attempt (0-based): the
// backoff's, or the app's Retry-After when that is longer; never more than
// the backoff maximum.
func retryDelay(b proxy.Backoff, attempt int, retryAfter time.Duration) time.Duration {
	return min(max(b.Delay(attempt), retryAfter), b.Max)
}

// bury dead-letters an event after its last attempt, counts it by reason
// and logs it; a spool that cannot record it leaves the event pending (it
// is retried when its lease lapses).
func (d *Deliverer) bury(ctx context.Context, log *zap.Logger, id string, attempt int, now time.Time, detail, reason string, fields ...zap.Field) {
	if err := d.spool.Bury(ctx, id, attempt, now, detail); err != nil {
		log.Error("could not dead-letter the event", zap.Error(err))
		return
	}
	d.observe.DeadLettered(reason)
	d.audit(proxy.AuditEvent{Event: proxy.AuditDeadLetter, EventID: id, Code: reason})
	msg := "webhook dead-lettered after the redelivery window"
	switch reason {
	case DeadLetterGone:
		msg = "webhook dead-lettered: the app answered 410 Gone"
	case DeadLetterUndecryptable:
		msg = "webhook dead-lettered without delivery: it cannot be decrypted with the configured at_rest_key"
	}
	log.Error(msg, append(fields, zap.String("reason", reason), proxy.LogString("last_error", detail))...)
}
