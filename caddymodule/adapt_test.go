package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

var update = flag.Bool("update", false, "rewrite the golden adapt outputs in testdata/adapt")

// adapt runs the real Caddyfile adapter, as `qrphgate adapt` does.
func adapt(t *testing.T, name, src string) ([]byte, error) {
	t.Helper()
	a := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, warnings, err := a.Adapt([]byte(src), map[string]any{"filename": name})
	for _, w := range warnings {
		t.Logf("adapt warning: %s:%d: %s", w.File, w.Line, w.Message)
	}
	return out, err
}

// TestAdaptGolden adapts every testdata/adapt/*.caddyfile and compares the
// JSON with the .json beside it (go test -run TestAdaptGolden -update
// rewrites them; review the diff).
func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.caddyfile"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden Caddyfiles: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := adapt(t, f, string(src))
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// adaptErr adapts src and returns the error text, failing if it adapted.
func adaptErr(t *testing.T, src string) string {
	t.Helper()
	out, err := adapt(t, "Caddyfile", src)
	if err == nil {
		t.Fatalf("adapted without error:\n%s", out)
	}
	return err.Error()
}

func TestMetricsCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"argument", ":9180 {\n\tmodulus_metrics extra\n}\n", "Caddyfile:2"},
		{"block", ":9180 {\n\tmodulus_metrics {\n\t\tpath /x\n\t}\n}\n", "Caddyfile:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := adaptErr(t, tc.src); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not point at %s", msg, tc.want)
			}
		})
	}
}
