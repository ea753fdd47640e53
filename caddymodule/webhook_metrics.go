package caddymodule

import (
	"context"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/qrphgate/qrphgate/proxy/inbound"
)

// Inbound webhook metrics. Labels are bounded: result, outcome and reason
// take the values in inbound.Results, inbound.Outcomes and
// inbound.DeadLetterReasons, nothing else.
const (
	metricWebhooksReceived  = "qrphgate_webhooks_received_total"
	metricWebhookAck        = "qrphgate_webhook_ack_seconds"
	metricDeliveryAttempts  = "qrphgate_webhook_delivery_attempts_total"
	metricDeliveryAttemptS  = "qrphgate_webhook_delivery_attempt_seconds"
	metricDeliveryLatency   = "qrphgate_webhook_delivery_latency_seconds"
	metricDeadLettered      = "qrphgate_webhook_dead_lettered_total"
	metricSpoolDepth        = "qrphgate_webhook_spool_depth"
	metricDeadLetters       = "qrphgate_webhook_dead_letters"
	metricOldestPendingSecs = "qrphgate_webhook_oldest_pending_seconds"
)

var (
	// Answering a webhook: well under a second (an fsync included).
	ackBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// One delivery attempt, up to forward_timeout.
	attemptBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// Receipt to the app's 2xx: milliseconds normally, days after an outage.
	latencyBuckets = []float64{.005, .01, .05, .1, .5, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 72 * 3600}
)

// The series, created once by initWebhookMetrics (the hot path then only
// reads these maps).
var (
	webhookMetricsOnce sync.Once
	receivedCounters   map[string]*metrics.Counter
	attemptCounters    map[string]*metrics.Counter
	ackHistogram       *metrics.PrometheusHistogram
	attemptHistogram   *metrics.PrometheusHistogram
	latencyHistogram   *metrics.PrometheusHistogram
	deadLetteredTotal  map[string]*metrics.Counter
)

// initWebhookMetrics creates every series at zero when the first
// modulus_webhook is provisioned, so dashboards see them before traffic.
func initWebhookMetrics() {
	receivedCounters = make(map[string]*metrics.Counter, len(inbound.Results))
	for _, r := range inbound.Results {
		receivedCounters[r] = metricsSet.GetOrCreateCounter(metricWebhooksReceived + `{result="` + r + `"}`)
	}
	attemptCounters = make(map[string]*metrics.Counter, len(inbound.Outcomes))
	for _, o := range inbound.Outcomes {
		attemptCounters[o] = metricsSet.GetOrCreateCounter(metricDeliveryAttempts + `{outcome="` + o + `"}`)
	}
	ackHistogram = metricsSet.GetOrCreatePrometheusHistogramExt(metricWebhookAck, ackBuckets)
	attemptHistogram = metricsSet.GetOrCreatePrometheusHistogramExt(metricDeliveryAttemptS, attemptBuckets)
	latencyHistogram = metricsSet.GetOrCreatePrometheusHistogramExt(metricDeliveryLatency, latencyBuckets)
	deadLetteredTotal = make(map[string]*metrics.Counter, len(inbound.DeadLetterReasons))
	for _, r := range inbound.DeadLetterReasons {
		deadLetteredTotal[r] = metricsSet.GetOrCreateCounter(metricDeadLettered + `{reason="` + r + `"}`)
	}
	metricsSet.GetOrCreateGauge(metricSpoolDepth, func() float64 {
		return sumWorkers(func(s inbound.DeliveryStatus) float64 { return float64(s.Pending) })
	})
	metricsSet.GetOrCreateGauge(metricDeadLetters, func() float64 {
		return sumWorkers(func(s inbound.DeliveryStatus) float64 { return float64(s.DeadLetters) })
	})
	metricsSet.GetOrCreateGauge(metricOldestPendingSecs, func() float64 {
		var oldest float64
		for _, w := range liveWebhookWorkers() {
			if st, err := w.deliverer.Status(context.Background()); err == nil && st.OldestPendingAge > oldest {
				oldest = st.OldestPendingAge
			}
		}
		return oldest
	})
}

// sumWorkers adds f over every live worker's status.
func sumWorkers(f func(inbound.DeliveryStatus) float64) float64 {
	var total float64
	for _, w := range liveWebhookWorkers() {
		if st, err := w.deliverer.Status(context.Background()); err == nil {
			total += f(st)
		}
	}
	return total
}

// webhookMetrics is the inbound Observer: it feeds the webhook metrics.
type webhookMetrics struct{}

func (webhookMetrics) Received(result string, elapsed time.Duration) {
	if c := receivedCounters[result]; c != nil {
		c.Inc()
	}
	ackHistogram.Update(elapsed.Seconds())
}

func (webhookMetrics) Attempted(outcome string, elapsed time.Duration) {
	if c := attemptCounters[outcome]; c != nil {
		c.Inc()
	}
	attemptHistogram.Update(elapsed.Seconds())
}

func (webhookMetrics) Delivered(sinceReceived time.Duration) {
	latencyHistogram.Update(sinceReceived.Seconds())
}

func (webhookMetrics) DeadLettered(reason string) {
	if c := deadLetteredTotal[reason]; c != nil {
		c.Inc()
	}
}

// Interface guard.
var _ inbound.Observer = webhookMetrics{}
