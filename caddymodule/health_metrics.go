package caddymodule

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/qrphgate/qrphgate/proxy/health"
)

// Readiness metrics. A series with nothing to report yet (no health
// handler, no ping answered) reads NaN, which no alert mistakes for 0.
const (
	metricUpstreamUp   = "qrphgate_upstream_up"
	metricUpstreamPing = "qrphgate_upstream_ping_seconds"
	metricReady        = "qrphgate_ready"
)

var healthMetricsOnce sync.Once

// readyHealth is the modulus_health of the running config, whose report
// qrphgate_ready follows.
var readyHealth atomic.Pointer[Health]

// initHealthMetrics creates the series when the first modulus_health is
// provisioned; each is computed when scraped from the pooled pollers'
// results, so reloads neither reset nor duplicate them.
func initHealthMetrics() {
	for _, api := range []string{"qr", "webhooks"} {
		metricsSet.GetOrCreateGauge(metricUpstreamUp+`{api="`+api+`"}`, func() float64 { return upstreamUp(api) })
		metricsSet.GetOrCreateGauge(metricUpstreamPing+`{api="`+api+`"}`, func() float64 { return upstreamPingSeconds(api) })
	}
	metricsSet.GetOrCreateGauge(metricReady, func() float64 {
		h := readyHealth.Load()
		if h == nil {
			return math.NaN()
		}
		if h.report().HTTPStatus() == 200 {
			return 1
		}
		return 0
	})
}

// upstreamUp is 1 when the last ping of every host of api answered, 0
// when one did not.
func upstreamUp(api string) float64 {
	v := math.NaN()
	for _, r := range livePollerResults("upstream:" + api + ":") {
		switch {
		case r.Pending:
		case r.Status != health.OK:
			return 0
		default:
			v = 1
		}
	}
	return v
}

// upstreamPingSeconds is the slowest last answered ping of api's hosts.
func upstreamPingSeconds(api string) float64 {
	v := math.NaN()
	for _, r := range livePollerResults("upstream:" + api + ":") {
		if !r.Pending && r.Status == health.OK && (math.IsNaN(v) || r.Took.Seconds() > v) {
			v = r.Took.Seconds()
		}
	}
	return v
}
