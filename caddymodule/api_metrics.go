package caddymodule

import (
	"strconv"
	"time"

	"github.com/qrphgate/qrphgate/proxy"
)

// Metric names of modulus_api (all in metricsSet, served by
// modulus_metrics). Labels come from fixed sets only: environment
// (sandbox, production), endpoint (create_qr, ping, webhooks_*), upstream
// (qr, webhooks), HTTP status codes and the API's error codes.
const (
	metricUpstreamRequests   = "qrphgate_outbound_upstream_requests_total"
	metricUpstreamDuration   = "qrphgate_outbound_upstream_duration_seconds"
	metricUpstreamRetries    = "qrphgate_outbound_upstream_retries_total"
	metricQueueWait          = "qrphgate_outbound_queue_wait_seconds"
	metricQueueRejections    = "qrphgate_outbound_queue_rejections_total"
	metricBreakerState       = "qrphgate_outbound_breaker_state"
	metricBreakerTransitions = "qrphgate_outbound_breaker_transitions_total"
	metricReplays            = "qrphgate_outbound_idempotent_replays_total"
	metricConflicts          = "qrphgate_outbound_idempotency_conflicts_total"
	metricCredentials        = "qrphgate_outbound_credentials_rejected_total"
	metricResponses          = "qrphgate_outbound_responses_total"
)

// Histogram buckets (seconds): upstream latency from 5 ms to 30 s, queue
// waits from 1 ms to a minute.
var (
	upstreamBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30}
	queueBuckets    = []float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// apiMetrics implements proxy.OutboundObserver on the package-level set.
type apiMetrics struct{ env string }

func (m apiMetrics) labels(kv ...string) string {
	s := `{environment="` + m.env + `"`
	for i := 0; i+1 < len(kv); i += 2 {
		s += `,` + kv[i] + `="` + kv[i+1] + `"`
	}
	return s + "}"
}

func (m apiMetrics) UpstreamCall(endpoint, outcome string, d time.Duration) {
	metricsSet.GetOrCreateCounter(metricUpstreamRequests + m.labels("endpoint", endpoint, "status", outcome)).Inc()
	metricsSet.GetOrCreatePrometheusHistogramExt(metricUpstreamDuration+m.labels("endpoint", endpoint), upstreamBuckets).Update(d.Seconds())
}

func (m apiMetrics) UpstreamRetry(endpoint, reason string) {
	metricsSet.GetOrCreateCounter(metricUpstreamRetries + m.labels("endpoint", endpoint, "reason", reason)).Inc()
}

func (m apiMetrics) QueueWait(d time.Duration) {
	metricsSet.GetOrCreatePrometheusHistogramExt(metricQueueWait+m.labels(), queueBuckets).Update(d.Seconds())
}

func (m apiMetrics) QueueRejected(reason string) {
	metricsSet.GetOrCreateCounter(metricQueueRejections + m.labels("reason", reason)).Inc()
}

func (m apiMetrics) IdempotentReplay() {
	metricsSet.GetOrCreateCounter(metricReplays + m.labels()).Inc()
}

func (m apiMetrics) IdempotencyConflict() {
	metricsSet.GetOrCreateCounter(metricConflicts + m.labels()).Inc()
}

func (m apiMetrics) CredentialsRejected() {
	metricsSet.GetOrCreateCounter(metricCredentials + m.labels()).Inc()
}

func (m apiMetrics) Response(endpoint string, status int, code string) {
	if code == "" {
		code = "ok"
	}
	metricsSet.GetOrCreateCounter(metricResponses + m.labels("endpoint", endpoint, "status", strconv.Itoa(status), "code", code)).Inc()
}

// breakerGauge sets the breaker-state gauge: 0 closed, 1 half-open, 2 open.
func breakerGauge(env, upstream string, s proxy.BreakerState) {
	m := apiMetrics{env: env}
	metricsSet.GetOrCreateGauge(metricBreakerState+m.labels("upstream", upstream), nil).Set(float64(s))
}

// recordBreaker records a transition: the gauge and a counter by target state.
func recordBreaker(env, upstream string, to proxy.BreakerState) {
	breakerGauge(env, upstream, to)
	m := apiMetrics{env: env}
	metricsSet.GetOrCreateCounter(metricBreakerTransitions + m.labels("upstream", upstream, "to", to.String())).Inc()
}

var _ proxy.OutboundObserver = apiMetrics{}
