package outbound

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/apispec"
)

// codeSources are the packages whose Code* constants are the codes
// modulus_api can answer: its own, the ones it shares with the inbound side
// (proxy) and the validation codes (policy).
var codeSources = []string{".", "..", filepath.Join("..", "..", "policy")}

// neverAnswered are code constants that never reach the app.
var neverAnswered = map[string]string{
	CodeClientClosed: "the client left: nothing is written (status 499 in logs only)",
}

// codeConstants reads the string constants named Code* of codeSources'
// non-test files: every error code the outbound engine can answer.
func codeConstants(t *testing.T) map[string]bool {
	t.Helper()
	out := make(map[string]bool)
	fset := token.NewFileSet()
	for _, dir := range codeSources {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						if _, skip := neverAnswered[v]; !skip {
							out[v] = true
						}
					}
				}
			}
		}
	}
	if len(out) < 30 {
		t.Fatalf("found only %d error codes in %v: the parser missed them", len(out), codeSources)
	}
	return out
}

// TestOpenAPIListsEveryErrorCode: every error code the outbound engine can
// answer appears in proxy/openapi.json under at least one status, and the
// document lists no code the engine does not have (but those
// notProvokedYet names, until they land).
func TestOpenAPIListsEveryErrorCode(t *testing.T) {
	documented := apispec.Load(t).ErrorCodes()
	constants := codeConstants(t)
	for code := range constants {
		if len(documented[code]) == 0 {
			t.Errorf("the engine can answer %q, which proxy/openapi.json does not list", code)
		}
	}
	for code := range documented {
		if _, pending := notProvokedYet[code]; !constants[code] && !pending {
			t.Errorf("proxy/openapi.json lists %q, which no code constant defines", code)
		}
	}
}

// TestOpenAPIErrorsMatchTheDocs: the error table of docs/outbound-api.md
// and the document give every code the same statuses.
func TestOpenAPIErrorsMatchTheDocs(t *testing.T) {
	documented := apispec.Load(t).ErrorCodes()
	table := docsErrorTable(t)
	for code, statuses := range table {
		for _, st := range statuses {
			if !slices.Contains(documented[code], st) {
				t.Errorf("docs/outbound-api.md gives %s status %s; proxy/openapi.json gives it %v", code, st, documented[code])
			}
		}
	}
	for code, statuses := range documented {
		for _, st := range statuses {
			// "other 4xx" in the docs is the provider's status passed on:
			// any 4xx the document lists for upstream_rejected.
			if !slices.Contains(table[code], st) && !(strings.HasPrefix(st, "4") && slices.Contains(table[code], "4XX")) {
				t.Errorf("proxy/openapi.json gives %s status %s; docs/outbound-api.md gives it %v", code, st, table[code])
			}
		}
	}
}

// docsErrorTable reads the Errors table of docs/outbound-api.md: code ->
// statuses ("other 4xx" as "4XX").
func docsErrorTable(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "outbound-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Errors\n")
	if !ok {
		t.Fatal("docs/outbound-api.md has no Errors section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	codeRe := regexp.MustCompile("`([a-z_]+)`")
	out := make(map[string][]string)
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| ") || strings.Contains(cells[1], "status") || strings.Contains(cells[1], "---") {
			continue
		}
		rows++
		var statuses []string
		for _, s := range strings.Split(cells[1], ",") {
			s = strings.TrimSpace(s)
			if s == "other 4xx" {
				s = "4XX"
			}
			statuses = append(statuses, s)
		}
		for _, m := range codeRe.FindAllStringSubmatch(cells[2], -1) {
			out[m[1]] = append(out[m[1]], statuses...)
		}
	}
	if rows < 20 {
		t.Fatalf("read only %d rows of the Errors table", rows)
	}
	return out
}
