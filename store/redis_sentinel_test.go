package store_test

import (
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/redistest"
)

// rediss-sentinel:// against sentinels and servers that speak only TLS.
func TestRedisSentinelTLS(t *testing.T) {
	t.Parallel()
	set := redistest.StartSentinel(t, redistest.SentinelOptions{TLS: true})
	if !strings.HasPrefix(set.URL(), "rediss-sentinel://") {
		t.Fatalf("URL %s", set.URL())
	}
	testTLSRoundTrip(t, set.URL(), set.RootCAs())
}
