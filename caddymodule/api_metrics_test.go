package caddymodule

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Every measurement the outbound engine reports lands in its documented
// series, with the environment label (the engine's own tests check when it
// reports them).
func TestAPIMetricsSeries(t *testing.T) {
	m := apiMetrics{env: "sandbox"}
	m.UpstreamCall("ping", "timeout", 30*time.Millisecond)
	m.UpstreamRetry("ping", "connect")
	m.QueueWait(2 * time.Second)
	m.QueueRejected("queue_full")
	m.IdempotentReplay()
	m.IdempotencyConflict()
	m.CredentialsRejected()
	m.Response("ping", 503, "credentials_rejected")
	var out bytes.Buffer
	metricsSet.WritePrometheus(&out)
	for _, want := range []string{
		`qrphgate_outbound_upstream_requests_total{environment="sandbox",endpoint="ping",status="timeout"}`,
		`qrphgate_outbound_upstream_duration_seconds_bucket{environment="sandbox",endpoint="ping",le="0.05"}`,
		`qrphgate_outbound_upstream_retries_total{environment="sandbox",endpoint="ping",reason="connect"}`,
		`qrphgate_outbound_queue_wait_seconds_bucket{environment="sandbox",le="2.5"}`,
		`qrphgate_outbound_queue_rejections_total{environment="sandbox",reason="queue_full"}`,
		`qrphgate_outbound_idempotent_replays_total{environment="sandbox"}`,
		`qrphgate_outbound_idempotency_conflicts_total{environment="sandbox"}`,
		`qrphgate_outbound_credentials_rejected_total{environment="sandbox"}`,
		`qrphgate_outbound_responses_total{environment="sandbox",endpoint="ping",status="503",code="credentials_rejected"}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %s", want)
		}
	}
}
