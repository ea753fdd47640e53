package caddymodule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// optionPages maps each Caddyfile parser to the page whose options table
// documents its directive.
var optionPages = map[string]string{
	"api_caddyfile.go":     "../docs/modulus_api.md",
	"webhook_caddyfile.go": "../docs/webhooks.md",
	"app_caddyfile.go":     "../docs/configuration.md",
	"health_caddyfile.go":  "../docs/operations.md",
	"sandbox_caddyfile.go": "../docs/sandbox.md",
}

// TestOptionsHaveDocsRows: every option a directive's Caddyfile parser
// accepts (a case of its eachOption callback) has a row of its own in the
// options table of the directive's page.
func TestOptionsHaveDocsRows(t *testing.T) {
	checked := 0
	for src, page := range optionPages {
		doc := readPage(t, page)
		for _, opt := range caddyfileOptions(t, src) {
			checked++
			if !strings.Contains(doc, "\n| `"+opt+"` |") {
				t.Errorf("%s accepts %q, but %s has no row for it", src, opt, page)
			}
		}
	}
	if checked < 60 {
		t.Fatalf("found only %d options: the test lost its way", checked)
	}
}

// TestRedisOptionDocsNameEveryURLForm: each option row that takes a Redis
// URL (a store, a spool, the ledger) names every form the option accepts,
// the Cluster and Sentinel ones and their TLS forms included.
func TestRedisOptionDocsNameEveryURLForm(t *testing.T) {
	forms := []string{"redis://", "rediss://", "redis-cluster://", "rediss-cluster://", "redis-sentinel://", "rediss-sentinel://"}
	pages := map[string]bool{"../docs/ledger.md": true}
	for _, page := range optionPages {
		pages[page] = true
	}
	checked := 0
	for page := range pages {
		for _, line := range strings.Split(readPage(t, page), "\n") {
			if !strings.HasPrefix(line, "| `") || !strings.Contains(line, "redis://") {
				continue
			}
			checked++
			opt, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			for _, f := range forms {
				if !strings.Contains(line, "`"+f) {
					t.Errorf("%s: the row of %s takes redis:// but does not name %s", page, opt, f)
				}
			}
		}
	}
	// modulus_api's store, modulus_webhook's spool and store, the ledger
	// (in configuration.md and ledger.md).
	if checked < 5 {
		t.Fatalf("found only %d rows that take a Redis URL, want at least 5", checked)
	}
}

func readPage(t *testing.T, page string) string {
	t.Helper()
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// caddyfileOptions lists the option names src's eachOption callback
// handles.
func caddyfileOptions(t *testing.T, src string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "eachOption" || len(call.Args) == 0 {
			return true
		}
		ast.Inspect(call.Args[len(call.Args)-1], func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					name, err := strconv.Unquote(lit.Value)
					if err == nil {
						opts = append(opts, name)
					}
				}
			}
			return true
		})
		return false
	})
	if len(opts) == 0 {
		t.Fatalf("%s: no eachOption callback with cases", src)
	}
	return opts
}
