package caddymodule

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/store"
)

// The at-rest keys are checked at provision: the error names the key by its
// position, never its value, and a refused config changes nothing.
func TestAtRestKeysRefused(t *testing.T) {
	t.Setenv("QG_TEST_AT_REST_SHORT", "FAKE-short-at-rest-key")
	t.Setenv("QG_TEST_AT_REST_1", "FAKE-TEST-at-rest-key-unit-00001")
	before := atRest.Sealer()
	for _, c := range []struct {
		name string
		app  App
		want string
	}{
		{"short", App{AtRestKeys: []string{"{env.QG_TEST_AT_REST_SHORT}"}}, "at_rest_key[1]: key must decode to exactly 32 bytes"},
		{"unset", App{AtRestKeys: []string{"{env.QG_TEST_AT_REST_1}", "{env.QG_TEST_AT_REST_UNSET}"}}, "at_rest_key[2]: {env.QG_TEST_AT_REST_UNSET} is empty or unset"},
		{"twice", App{AtRestKeys: []string{"{env.QG_TEST_AT_REST_1}", "{env.QG_TEST_AT_REST_1}"}}, "at_rest_key: at-rest keys 1 and 2 are the same key"},
		{"not hex", App{AtRestKeys: []string{"{env.QG_TEST_AT_REST_1}"}, AtRestKeyEncoding: "hex"}, "at_rest_key[1]: key is not valid hex"},
		{"relative audit_log placeholder", App{AuditLog: "{env.QG_TEST_AT_REST_RELATIVE}"}, "audit_log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "relative audit_log placeholder" {
				t.Setenv("QG_TEST_AT_REST_RELATIVE", "audit.log")
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			a := c.app
			err := a.Provision(ctx)
			_ = a.Cleanup()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "FAKE-") {
				t.Fatalf("the error reveals a key: %v", err)
			}
			if atRest.Sealer() != before {
				t.Fatal("a refused config changed the at-rest keys")
			}
		})
	}
}

// useAtRestKeys changes the process's setting only when the keys differ, so
// a reload that keeps them wakes no re-encryption pass.
func TestUseAtRestKeys(t *testing.T) {
	before := atRest.Sealer()
	t.Cleanup(func() { useAtRestKeys(before, zap.NewNop()) })
	k1, _ := store.NewSealer([]byte("FAKE-TEST-at-rest-key-unit-00001"))
	k1again, _ := store.NewSealer([]byte("FAKE-TEST-at-rest-key-unit-00001"))
	k21, _ := store.NewSealer([]byte("FAKE-TEST-at-rest-key-unit-00002"), []byte("FAKE-TEST-at-rest-key-unit-00001"))
	useAtRestKeys(k1, zap.NewNop())
	changed := atRest.Changed()
	useAtRestKeys(k1again, zap.NewNop())
	if isClosedChan(changed) || atRest.Sealer() != k1 {
		t.Fatal("the same keys again woke the passes")
	}
	useAtRestKeys(k21, zap.NewNop())
	if !isClosedChan(changed) || atRest.Sealer() != k21 {
		t.Fatal("a rotation did not take effect")
	}
	st := currentAtRestStatus().(atRestStatus)
	if !st.Enabled || len(st.KeyIDs) != 2 || st.KeyIDs[1] != k1.KeyIDs()[0] {
		t.Fatalf("status %+v", st)
	}
}

func isClosedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
