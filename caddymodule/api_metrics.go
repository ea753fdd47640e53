package caddymodule

import (
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// Metric names of modulus_api (all in metricsSet, served by
// modulus_metrics). Labels come from fixed sets only: environment
// (sandbox, production), account (the configured accounts' ids), endpoint (create_qr, qr_status, ping, webhooks_*), upstream
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

// apiMetrics implements outbound.Observer on the package-level set. A
// breaker's transition is also logged (at warn, on log when set). The
// breakers outlive a config, so the observer the first config gave them
// (its account, its logger) stays theirs.
type apiMetrics struct {
	env     string
	account string
	log     *zap.Logger
}

// metricKey identifies one series; handles are cached by it so the hot path
// builds no metric-name strings.
type metricKey struct{ name, env, a, b, c string }

var metricHandles sync.Map // metricKey -> *metrics.Counter or *metrics.PrometheusHistogram

func (m apiMetrics) counter(name string, kv ...string) *metrics.Counter {
	k := m.key(name, kv)
	if c, ok := metricHandles.Load(k); ok {
		return c.(*metrics.Counter)
	}
	c := metricsSet.GetOrCreateCounter(name + m.labels(kv...))
	metricHandles.Store(k, c)
	return c
}

func (m apiMetrics) histogram(name string, buckets []float64, kv ...string) *metrics.PrometheusHistogram {
	k := m.key(name, kv)
	if h, ok := metricHandles.Load(k); ok {
		return h.(*metrics.PrometheusHistogram)
	}
	h := metricsSet.GetOrCreatePrometheusHistogramExt(name+m.labels(kv...), buckets)
	metricHandles.Store(k, h)
	return h
}

// key packs up to three label pairs (names are fixed per metric).
func (m apiMetrics) key(name string, kv []string) metricKey {
	k := metricKey{name: name, env: m.env}
	for i, dst := range []*string{&k.a, &k.b, &k.c} {
		if 2*i+1 < len(kv) {
			*dst = kv[2*i+1]
		}
	}
	return k
}

func (m apiMetrics) labels(kv ...string) string {
	s := `{environment="` + m.env + `"`
	for i := 0; i+1 < len(kv); i += 2 {
		s += `,` + kv[i] + `="` + kv[i+1] + `"`
	}
	return s + "}"
}

func (m apiMetrics) UpstreamCall(endpoint, outcome string, d time.Duration) {
	m.counter(metricUpstreamRequests, "endpoint", endpoint, "status", outcome).Inc()
	m.histogram(metricUpstreamDuration, upstreamBuckets, "endpoint", endpoint).Update(d.Seconds())
}

func (m apiMetrics) UpstreamRetry(endpoint, reason string) {
	m.counter(metricUpstreamRetries, "endpoint", endpoint, "reason", reason).Inc()
}

func (m apiMetrics) QueueWait(d time.Duration) {
	m.histogram(metricQueueWait, queueBuckets).Update(d.Seconds())
}

func (m apiMetrics) QueueRejected(reason string) {
	m.counter(metricQueueRejections, "reason", reason).Inc()
}

func (m apiMetrics) IdempotentReplay() {
	m.counter(metricReplays).Inc()
}

func (m apiMetrics) IdempotencyConflict() {
	m.counter(metricConflicts).Inc()
}

func (m apiMetrics) CredentialsRejected() {
	m.counter(metricCredentials).Inc()
}

func (m apiMetrics) Response(endpoint string, status int, code string) {
	if code == "" {
		code = "ok"
	}
	m.counter(metricResponses, "endpoint", endpoint, "status", strconv.Itoa(status), "code", code).Inc()
}

// precreate makes the series that alerts watch before their first event
// (a rejection, a blown fuse), so that a rule sees 0 rather than nothing.
func (m apiMetrics) precreate() {
	m.counter(metricCredentials)
	for _, reason := range []string{"max_wait", "queue_full"} {
		m.counter(metricQueueRejections, "reason", reason)
	}
}

// breakerGauge sets the breaker-state gauge: 0 closed, 1 half-open, 2 open.
// Breakers are per account (outbound.AccountID) as well as per upstream.
func breakerGauge(env, account, upstream string, s outbound.BreakerState) {
	m := apiMetrics{env: env}
	metricsSet.GetOrCreateGauge(metricBreakerState+m.labels("account", account, "upstream", upstream), nil).Set(float64(s))
}

// recordBreaker records a transition: the gauge and a counter by target state.
func recordBreaker(env, account, upstream string, to outbound.BreakerState) {
	breakerGauge(env, account, upstream, to)
	m := apiMetrics{env: env}
	metricsSet.GetOrCreateCounter(metricBreakerTransitions + m.labels("account", account, "upstream", upstream, "to", to.String())).Inc()
}

// BreakerChanged records a breaker's transition and logs it.
func (m apiMetrics) BreakerChanged(upstream string, from, to outbound.BreakerState) {
	recordBreaker(m.env, m.account, upstream, to)
	if m.log != nil {
		m.log.Warn("circuit breaker changed state", zap.String("upstream", upstream),
			zap.String("from", from.String()), zap.String("to", to.String()))
	}
}

var _ outbound.Observer = apiMetrics{}
