package qrphgate_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestEngineImportsNoCaddy enforces the layout: the engine packages are
// plain Go, and only caddymodule/ and cmd/ import Caddy.
func TestEngineImportsNoCaddy(t *testing.T) {
	var pkgs []string
	for _, dir := range []string{"proxy", "policy", "crypto", "sandbox", "store"} {
		if _, err := os.Stat(dir); err == nil {
			pkgs = append(pkgs, "./"+dir+"/...")
		}
	}
	if len(pkgs) < 4 {
		t.Fatalf("engine packages missing: found %v", pkgs)
	}
	out, err := exec.Command("go", append([]string{"list", "-deps", "-test", "-f", "{{.ImportPath}}"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/caddyserver/") || strings.HasPrefix(dep, "github.com/qrphgate/qrphgate/caddymodule") {
			t.Errorf("an engine package depends on %s", dep)
		}
	}
}

// TestEngineDependencyDirection enforces the package layout table in
// docs/development.md ("may import"): policy, crypto and store import
// nothing of ours; sandbox may use policy, crypto and store (the simulator's
// rate limit is the store's sliding log); proxy may use policy, crypto and
// store. Both may use internal/ helpers (the clock).
func TestEngineDependencyDirection(t *testing.T) {
	const mod = "github.com/qrphgate/qrphgate/"
	allowed := map[string][]string{
		"policy": nil, "crypto": nil, "store": nil,
		"sandbox": {"policy", "crypto", "store", "internal"},
		"proxy":   {"policy", "crypto", "store", "internal"},
	}
	for dir, ok := range allowed {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./"+dir+"/...").CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", dir, err, out)
		}
		for _, imp := range strings.Fields(string(out)) {
			rel, ours := strings.CutPrefix(imp, mod)
			if !ours || strings.HasPrefix(rel, dir+"/") || rel == dir {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			permitted := false
			for _, a := range ok {
				permitted = permitted || top == a
			}
			if !permitted {
				t.Errorf("%s imports %s, which the layout does not allow", dir, imp)
			}
		}
	}
}
