package caddymodule

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// One file, one owner: the ledger refuses a path a spool, modulus_api's
// store or the audit log holds, and each of them refuses the ledger's,
// whichever opens first, with an error that names both; the same role may
// share a path (a reload).
func TestFilesAreNotShared(t *testing.T) {
	newCtx := func() caddy.Context {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		return ctx
	}
	wantErr := func(t *testing.T, err error, option, holder string) {
		t.Helper()
		if err == nil || !strings.HasPrefix(err.Error(), option+": ") || !strings.Contains(err.Error(), "is "+holder+"'s file") ||
			!strings.Contains(err.Error(), "each need a file of their own") {
			t.Fatalf("error %v, want %s refused for %s's file", err, option, holder)
		}
	}
	ledgerApp := func(t *testing.T, js string) (*App, error) {
		a := new(App)
		if err := json.Unmarshal([]byte(js), a); err != nil {
			t.Fatal(err)
		}
		err := a.Provision(newCtx())
		t.Cleanup(func() { _ = a.Cleanup() })
		return a, err
	}

	t.Run("store, then ledger", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shared.db")
		st, err := openOutboundStore(newCtx(), "file://"+path, "sandbox")
		if err != nil {
			t.Fatal(err)
		}
		defer st.release()
		_, err = ledgerApp(t, `{"ledger":"file://`+path+`"}`)
		wantErr(t, err, "ledger", fileRoleStore)
	})
	t.Run("ledger, then store", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shared.db")
		if _, err := ledgerApp(t, `{"ledger":"file://`+path+`"}`); err != nil {
			t.Fatal(err)
		}
		_, err := openOutboundStore(newCtx(), "file://"+path, "sandbox")
		wantErr(t, err, "store", fileRoleLedger)
	})
	t.Run("spool, then ledger", func(t *testing.T) {
		app := newTestApp(t)
		wh := testWebhook(t, app.srv.URL)
		provision(t, wh, newCaddyContext(t))
		_, err := ledgerApp(t, `{"ledger":"file://`+wh.Spool+`"}`)
		wantErr(t, err, "ledger", fileRoleSpool)
	})
	t.Run("ledger, then spool", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shared.db")
		if _, err := ledgerApp(t, `{"ledger":"file://`+path+`"}`); err != nil {
			t.Fatal(err)
		}
		app := newTestApp(t)
		wh := testWebhook(t, app.srv.URL)
		wh.Spool = path
		err := wh.Provision(newCaddyContext(t))
		_ = wh.Cleanup()
		wantErr(t, err, "spool", fileRoleLedger)
	})
	t.Run("audit log and ledger", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shared.db")
		_, err := ledgerApp(t, `{"ledger":"file://`+path+`","audit_log":"`+path+`"}`)
		wantErr(t, err, "ledger", fileRoleAudit)
	})
	t.Run("the same role shares", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		if _, err := ledgerApp(t, `{"ledger":"file://`+path+`"}`); err != nil {
			t.Fatal(err)
		}
		if _, err := ledgerApp(t, `{"ledger":"file://`+path+`"}`); err != nil {
			t.Fatalf("a second config on the ledger's file: %v", err)
		}
	})
}
