package caddymodule

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/cobra"
)

func probeCommand(t *testing.T) *cobra.Command {
	t.Helper()
	for _, build := range modulusCommands {
		if c := build(); c.Name() == "probe" {
			return c
		}
	}
	t.Fatal("no probe subcommand")
	return nil
}

// probe exits 0 on a 200 and fails on a 503 or no answer, saying why.
func TestProbeCommand(t *testing.T) {
	var code atomic.Int64
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
		if code.Load() == 200 {
			_, _ = w.Write([]byte(`{"status":"degraded","checks":{}}`))
		} else {
			_, _ = w.Write([]byte(`{"status":"unavailable","checks":{}}`))
		}
	}))
	defer srv.Close()
	run := func(args ...string) (string, error) {
		c := probeCommand(t)
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetErr(&out)
		c.SetArgs(args)
		err := c.Execute()
		return out.String(), err
	}
	if out, err := run(srv.URL + "/readyz"); err != nil || !strings.Contains(out, "HTTP 200, degraded") {
		t.Fatalf("ready: %v %q", err, out)
	}
	code.Store(503)
	if out, err := run(srv.URL + "/readyz"); err == nil || !strings.Contains(out, "HTTP 503, unavailable") {
		t.Fatalf("not ready: %v %q", err, out)
	}
	srv.Close()
	if _, err := run(srv.URL+"/readyz", "--timeout", "1s"); err == nil {
		t.Fatal("no answer counted as ready")
	}
}
