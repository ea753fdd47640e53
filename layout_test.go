package qrphgate_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineImportsNoCaddy enforces the layout: the engine packages are
// plain Go, and only caddymodule/ and cmd/ import Caddy.
func TestEngineImportsNoCaddy(t *testing.T) {
	var pkgs []string
	for _, dir := range []string{"proxy", "policy", "crypto", "sandbox", "store", "ledger", "preflight", "audit"} {
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

// TestEngineDependencyDirection enforces the layout table of
// docs/development.md: policy and crypto import nothing of ours, store
// only the clock (internal/clock, the one time source of the engine);
// sandbox may use policy, crypto and store (the simulator's rate limit is
// the store's sliding log); proxy (what both directions share) may use
// policy, crypto and store; proxy/outbound and proxy/inbound may use proxy
// as well, and never each other; the payments ledger (ledger) uses store
// and policy (and proxy for its log helper, LogString), and neither
// direction imports it (each has its own small interface, which
// caddymodule wires to it); preflight (the go-live
// checks) may use policy, crypto and store; the audit trail (audit) only
// the clock, and the directions report to it through proxy.Auditor. All
// may use internal/ helpers (the clock).
func TestEngineDependencyDirection(t *testing.T) {
	const mod = "github.com/qrphgate/qrphgate/"
	allowed := map[string][]string{
		"policy": nil, "crypto": nil,
		"store":          {"internal/clock"},
		"sandbox":        {"policy", "crypto", "store", "internal"},
		"proxy":          {"policy", "crypto", "store", "internal"},
		"proxy/outbound": {"proxy", "policy", "crypto", "store", "internal"},
		"proxy/inbound":  {"proxy", "policy", "crypto", "store", "internal"},
		"ledger":         {"proxy", "policy", "store", "internal"},
		"audit":          {"internal/clock"},
		"proxy/health":   {"internal"},
		"preflight":      {"policy", "crypto", "store", "internal"},
	}
	for dir, ok := range allowed {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		// Each entry lists its own package only (not ./dir/...): the
		// packages below it have their own entries.
		out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./"+dir).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", dir, err, out)
		}
		for _, imp := range strings.Fields(string(out)) {
			rel, ours := strings.CutPrefix(imp, mod)
			if !ours || within(rel, dir) {
				continue
			}
			permitted := false
			for _, a := range ok {
				permitted = permitted || within(rel, a)
			}
			if !permitted {
				t.Errorf("%s imports %s, which the layout does not allow", dir, imp)
			}
		}
	}
}

// within reports whether the package rel (relative to the module) is pkg or
// one of its helpers below it (store/storetest, internal/clock). The two
// directions are not helpers of proxy: they sit beside each other.
func within(rel, pkg string) bool {
	if rel == pkg {
		return true
	}
	if !strings.HasPrefix(rel, pkg+"/") {
		return false
	}
	return pkg != "proxy" || !(rel == "proxy/outbound" || strings.HasPrefix(rel, "proxy/outbound/") ||
		rel == "proxy/inbound" || strings.HasPrefix(rel, "proxy/inbound/"))
}

// TestDirectionsIndependent: proxy/outbound and proxy/inbound never import
// each other (what both need lives in proxy), tests included.
func TestDirectionsIndependent(t *testing.T) {
	for _, pair := range [][2]string{{"proxy/outbound", "proxy/inbound"}, {"proxy/inbound", "proxy/outbound"}} {
		out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./"+pair[0]).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pair[0], err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "github.com/qrphgate/qrphgate/"+pair[1] {
				t.Errorf("%s depends on %s", pair[0], pair[1])
			}
		}
	}
}

// TestSharedHelpersUsed: every exported function of proxy (what both
// directions share) is called from another package's code, tests aside: a
// helper no other package uses is unexported or removed, not kept as a
// dead export.
func TestSharedHelpersUsed(t *testing.T) {
	fset := token.NewFileSet()
	exported := map[string]bool{}
	files, _ := filepath.Glob("proxy/*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.IsExported() {
				exported[fd.Name.Name] = true
			}
		}
	}
	if len(exported) < 10 {
		t.Fatalf("found only %d exported functions in proxy: the test lost its way", len(exported))
	}
	used := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(path) == "proxy" {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "proxy" {
					used[sel.Sel.Name] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range exported {
		if !used[name] {
			t.Errorf("proxy.%s is exported but no other package calls it: unexport or remove it", name)
		}
	}
}
