package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

func TestCLIBehavesLikeCaddy(t *testing.T) {
	dir := t.TempDir()
	out, err := e2e.Run(t, dir, "version")
	if err != nil || !strings.HasPrefix(out, "v2.11.") {
		t.Fatalf("version: %v %q", err, out)
	}
	out, err = e2e.Run(t, dir, "list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v", err)
	}
	for _, m := range []string{"http.handlers.modulus_metrics", "admin.api.modulus", "http.handlers.reverse_proxy", "tls.issuance.acme"} {
		if !strings.Contains(out, m+"\n") {
			t.Errorf("list-modules lacks %s", m)
		}
	}

	good := filepath.Join(dir, "Caddyfile")
	must(t, os.WriteFile(good, []byte("{\n\tadmin off\n}\nhttp://127.0.0.1:9180 {\n\tmodulus_metrics\n}\n"), 0o600))
	out, err = e2e.Run(t, dir, "adapt", "--config", good)
	if err != nil || !strings.Contains(out, `"handler":"modulus_metrics"`) {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	if out, err = e2e.Run(t, dir, "validate", "--config", good); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate good config: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "Bad.caddyfile")
	must(t, os.WriteFile(bad, []byte("http://127.0.0.1:9180 {\n\tmodulus_metrics {\n\t\tnope 1\n\t}\n}\n"), 0o600))
	out, err = e2e.Run(t, dir, "validate", "--config", bad, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "Bad.caddyfile:3") {
		t.Fatalf("validate bad config should fail naming file and line: %v\n%s", err, out)
	}
}

func TestRunServesMetricsAndStatus(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	port := e2e.FreePort(t)
	g := e2e.Start(t, e2e.Options{
		AdminAddr: admin,
		Caddyfile: fmt.Sprintf("{\n\tadmin %s\n}\nhttp://127.0.0.1:%d {\n\tmodulus_metrics\n}\n", admin, port),
	})
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %q", resp.StatusCode, ct)
	}
	body := get(t, g.Admin()+"/modulus/status", http.StatusOK)
	if !strings.HasPrefix(strings.TrimSpace(body), "{") {
		t.Fatalf("status is not JSON: %q", body)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
