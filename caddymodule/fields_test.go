package caddymodule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFieldsDocumented: every exported field of an exported config
// struct (one with JSON tags: the modules and their option blocks) has its own doc comment and a blank line before the next
// field, as Caddy's own module structs do; the comment is what `caddy
// list-modules` readers and the JSON docs see.
func TestConfigFieldsDocumented(t *testing.T) {
	checked := checkFieldsDocumented(t, ".", func(string, *ast.StructType) bool { return true }, func(f *ast.Field) bool {
		return f.Tag != nil && strings.Contains(f.Tag.Value, `json:"`)
	})
	if checked < 40 {
		t.Fatalf("checked only %d fields: the test lost its way", checked)
	}
}

// engineDirs are the engine packages, whose configuration the adapter
// fills in.
var engineDirs = []string{"../proxy", "../proxy/outbound", "../proxy/inbound", "../proxy/health", "../policy", "../crypto",
	"../sandbox", "../store", "../ledger", "../audit", "../preflight"}

// TestEngineConfigFieldsDocumented is the same rule for the engine's
// configuration structs (exported types named ...Config, ...Options or
// ...Settings, without JSON tags: one with them is an answer or a view):
// every exported field has its own line and doc comment, with a blank line
// before it, as in Caddy's structs.
func TestEngineConfigFieldsDocumented(t *testing.T) {
	isConfig := func(name string, st *ast.StructType) bool {
		if !strings.HasSuffix(name, "Config") && !strings.HasSuffix(name, "Options") && !strings.HasSuffix(name, "Settings") {
			return false
		}
		for _, f := range st.Fields.List {
			if f.Tag != nil && strings.Contains(f.Tag.Value, `json:"`) {
				return false
			}
		}
		return true
	}
	checked := 0
	for _, dir := range engineDirs {
		checked += checkFieldsDocumented(t, dir, isConfig, func(*ast.Field) bool { return true })
	}
	if checked < 100 {
		t.Fatalf("checked only %d fields: the test lost its way", checked)
	}
}

// TestEngineReportsThroughObservers: the engine reports events (to
// metrics, and the logs that go with them) through its Observer
// interfaces only, never through callback fields of its configuration
// (OnBreakerChange, OnStateChange were such). The one callback left,
// inbound.Config.OnAccepted, reports nothing: it wakes the deliverer.
func TestEngineReportsThroughObservers(t *testing.T) {
	notReporting := map[string]bool{"Config.OnAccepted": true}
	found := 0
	for _, dir := range engineDirs {
		eachStruct(t, dir, func(fset *token.FileSet, ts *ast.TypeSpec, st *ast.StructType) {
			for _, field := range st.Fields.List {
				if _, isFunc := field.Type.(*ast.FuncType); !isFunc {
					continue
				}
				for _, id := range field.Names {
					if !strings.HasPrefix(id.Name, "On") {
						continue
					}
					found++
					if !notReporting[ts.Name.Name+"."+id.Name] {
						t.Errorf("%s: %s.%s is a callback; report through the package's Observer interface", fset.Position(id.Pos()), ts.Name, id.Name)
					}
				}
			}
		})
	}
	if found == 0 {
		t.Fatal("not even OnAccepted was found: the test lost its way")
	}
}

// checkFieldsDocumented checks the exported fields (those wanted) of the
// exported struct types (those named as wanted) in dir's non-test files,
// and returns how many it checked.
func checkFieldsDocumented(t *testing.T, dir string, wantType func(string, *ast.StructType) bool, wantField func(*ast.Field) bool) int {
	t.Helper()
	checked := 0
	eachStruct(t, dir, func(fset *token.FileSet, ts *ast.TypeSpec, st *ast.StructType) {
		if !ts.Name.IsExported() || !wantType(ts.Name.Name, st) {
			return
		}
		var prevEnd token.Pos
		for _, field := range st.Fields.List {
			if !wantField(field) || len(field.Names) == 0 || !field.Names[0].IsExported() {
				prevEnd = field.End()
				continue
			}
			checked++
			where := fset.Position(field.Pos())
			if len(field.Names) != 1 {
				t.Errorf("%s: %s.%v: one field per line", where, ts.Name, field.Names)
			}
			if field.Doc == nil {
				t.Errorf("%s: %s.%s has no doc comment of its own", where, ts.Name, field.Names[0])
			} else if prevEnd.IsValid() && fset.Position(field.Doc.Pos()).Line-fset.Position(prevEnd).Line < 2 {
				t.Errorf("%s: %s.%s: leave a blank line before its comment", where, ts.Name, field.Names[0])
			}
			prevEnd = field.End()
		}
	})
	return checked
}

// eachStruct calls fn for every struct type declared in dir's non-test
// files (parsed with their comments).
func eachStruct(t *testing.T, dir string, fn func(*token.FileSet, *ast.TypeSpec, *ast.StructType)) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					fn(fset, ts, st)
				}
			}
			return true
		})
	}
}
