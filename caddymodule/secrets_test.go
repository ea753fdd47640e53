package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestResolveSecret(t *testing.T) {
	const value = "sk_test_FAKEsecretFAKEsecret0000"
	t.Setenv("QRPHGATE_TEST_SECRET", value)
	t.Setenv("QRPHGATE_TEST_EMPTY", "")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repl := caddy.NewReplacer()
	tests := []struct {
		name, raw  string
		literalOK  bool
		want, err  string
		wantInline bool
	}{
		{name: "env", raw: "{env.QRPHGATE_TEST_SECRET}", want: value},
		{name: "file (trailing newline dropped)", raw: "{file." + file + "}", want: value},
		{name: "unset env", raw: "{env.QRPHGATE_TEST_UNSET_XYZ}", err: "secret_key: {env.QRPHGATE_TEST_UNSET_XYZ} is empty or unset"},
		{name: "empty env", raw: "{env.QRPHGATE_TEST_EMPTY}", err: "is empty or unset"},
		{name: "missing file", raw: "{file./nonexistent/qrphgate}", err: "is empty or unset"},
		{name: "empty option", raw: "", err: "secret_key is required"},
		{name: "inline refused", raw: value, err: "secret_key must be a {env.NAME} or {file.PATH} placeholder"},
		{name: "inline allowed in sandbox", raw: value, literalOK: true, want: value, wantInline: true},
		{name: "placeholder with text", raw: "sk_{env.QRPHGATE_TEST_SECRET}", literalOK: true, err: "single {env.NAME} or {file.PATH}"},
		{name: "other placeholder", raw: "{http.request.header.X}", literalOK: true, err: "single {env.NAME}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, inline, err := resolveSecret(repl, "secret_key", tc.raw, tc.literalOK)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), value) {
					t.Fatalf("error reveals the secret: %v", err)
				}
				return
			}
			if err != nil || got != tc.want || inline != tc.wantInline {
				t.Fatalf("got %q inline=%v err=%v", got, inline, err)
			}
		})
	}
}
