package store_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The Lua that hands a claim back to the queue lives in one fragment,
// redisHandBack, and each script that hands claims back (the heartbeat
// with its farewell, the reconciliation after a lost claim) is built on
// it: a fix to how a claim is handed back then reaches every path.
func TestRedisSpoolHandsBackInOnePlace(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	// The re-queue of an event at its own next attempt: the heart of a
	// hand-back.
	const requeue = "redis.call('HGET', k, 'nextus')"
	var requeues []string
	built := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING && strings.Contains(n.Value, requeue) {
					requeues = append(requeues, fset.Position(n.Pos()).String())
				}
			case *ast.ValueSpec:
				for i, v := range n.Values {
					call, ok := v.(*ast.CallExpr)
					if !ok || len(call.Args) != 1 {
						continue
					}
					if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "NewScript" {
						continue
					}
					if bin, ok := call.Args[0].(*ast.BinaryExpr); ok {
						if id, ok := bin.X.(*ast.Ident); ok && id.Name == "redisHandBack" {
							built[n.Names[i].Name] = true
						}
					}
				}
			}
			return true
		})
	}
	if len(requeues) != 1 {
		t.Errorf("the hand-back's re-queue is written %d times (%v), want once, in redisHandBack", len(requeues), requeues)
	}
	for _, script := range []string{"redisBeatScript", "redisReconcileScript"} {
		if !built[script] {
			t.Errorf("%s does not start from redisHandBack", script)
		}
	}
}
