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
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			var prevEnd token.Pos
			for _, field := range st.Fields.List {
				if field.Tag == nil || !strings.Contains(field.Tag.Value, `json:"`) || len(field.Names) == 0 || !field.Names[0].IsExported() {
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
			return true
		})
	}
	if checked < 40 {
		t.Fatalf("checked only %d fields: the test lost its way", checked)
	}
}
