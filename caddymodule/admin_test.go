package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatusBoard(t *testing.T) {
	b := &statusBoard{sources: make(map[string]map[string]statusSource)}
	unA := b.register("outbound", "a", func() any { return map[string]int{"used": 1} })
	b.register("inbound", "w", func() any { return "ok" })
	snap := b.snapshot()
	if snap["outbound"]["a"] == nil || snap["inbound"]["w"] != "ok" {
		t.Fatalf("snapshot %v", snap)
	}
	// A newer source under the same name survives the old one's unregister
	// (a reload creates the new component before cleaning up the old).
	b.register("outbound", "a", func() any { return "new" })
	unA()
	if got := b.snapshot()["outbound"]["a"]; got != "new" {
		t.Fatalf("after stale unregister: %v", got)
	}
}

func TestStatusRoute(t *testing.T) {
	un := status.register("test", "probe", func() any { return map[string]string{"state": "closed"} })
	defer un()
	var h http.Handler
	for _, r := range (Admin{}).Routes() {
		if r.Pattern == "/modulus/status" {
			h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { _ = r.Handler.ServeHTTP(w, req) })
		}
	}
	if h == nil {
		t.Fatal("no /modulus/status route")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/modulus/status", nil))
	var body map[string]map[string]map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	if body["test"]["probe"]["state"] != "closed" {
		t.Fatalf("status body %s", rec.Body.String())
	}
}
