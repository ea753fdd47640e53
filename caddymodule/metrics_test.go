package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsHandler(t *testing.T) {
	metricsSet.GetOrCreateCounter(`qrphgate_test_probe_total{kind="x"}`).Add(3)
	rec := httptest.NewRecorder()
	if err := (Metrics{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil), nil); err != nil {
		t.Fatal(err)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	if !strings.Contains(rec.Body.String(), `qrphgate_test_probe_total{kind="x"} 3`) {
		t.Fatalf("metrics output lacks the probe:\n%s", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	err := (Metrics{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil), nil)
	if err == nil || !strings.Contains(err.Error(), "405") && rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: err = %v, Allow = %q", err, rec.Header().Get("Allow"))
	}
}
