// Package quickstart runs the committed examples/quickstart/Caddyfile, the
// file the README's main command runs, in the real qrphgate binary for
// end-to-end and browser tests. Only its listen ports and admin address
// change (so tests cannot collide with each other or with a quickstart a
// developer has running), by exact string replacement, each of which must
// happen; everything else is the file as committed.
package quickstart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// The addresses the committed Caddyfile uses.
const (
	APIAddr     = "127.0.0.1:2090"
	SandboxAddr = "127.0.0.1:2091"
	WebhookAddr = "localhost:8443"
	OpsAddr     = "127.0.0.1:2092"
)

// leftoverPort finds a quickstart port the rewrite missed.
var leftoverPort = regexp.MustCompile(`:(2090|2091|2092|8443)\b`)

// AppWebhookEnv names the environment variable the quickstart's forward_to
// reads when the file is adapted ({$QRPHGATE_APP_WEBHOOK_URL:<demo inbox>}):
// unset, deliveries go to the simulator's demo inbox; the example apps'
// READMEs set it to the app's webhook URL.
const AppWebhookEnv = "QRPHGATE_APP_WEBHOOK_URL"

// forwardToLine is how the committed file names it; an app run needs it there.
const forwardToLine = "forward_to {$" + AppWebhookEnv + ":http://" + SandboxAddr + "/sandbox/inbox}"

// Options change what Start runs.
type Options struct {
	// ForwardTo, when set, is where modulus_webhook delivers instead of the
	// demo inbox (an example app's webhook URL). It is passed as
	// QRPHGATE_APP_WEBHOOK_URL, as the example apps' READMEs do, and the
	// committed file must read that variable in its forward_to.
	ForwardTo string
}

// Ports are the replacements for a test run.
type Ports struct {
	API, Sandbox, Webhook, Ops int
	Admin                      string // host:port
}

// Dir is the absolute path of examples/quickstart.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "quickstart")
}

// Caddyfile returns the committed file's text.
func Caddyfile(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FakeSecret returns the content of one of the committed fake secrets
// (secret_key, encryption_key, sign_secret) as the {file.*} placeholder
// reads it (one trailing newline dropped).
func FakeSecret(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), "fake-secrets", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// Rewrite moves the quickstart to other ports and sets the admin address.
// Every replacement must find its target, and afterwards none of the
// original ports may be left anywhere in the text, so a changed Caddyfile
// makes the tests fail instead of silently using the default ports.
func Rewrite(src string, p Ports) (string, error) {
	if strings.Contains(src, "\n\tadmin ") {
		return "", fmt.Errorf("the quickstart sets an admin address; this rewrite expects the default")
	}
	pairs := []string{
		APIAddr, fmt.Sprintf("127.0.0.1:%d", p.API),
		SandboxAddr, fmt.Sprintf("127.0.0.1:%d", p.Sandbox),
		WebhookAddr, fmt.Sprintf("localhost:%d", p.Webhook),
		OpsAddr, fmt.Sprintf("127.0.0.1:%d", p.Ops),
		"\n\tskip_install_trust\n", fmt.Sprintf("\n\tadmin %s\n\tskip_install_trust\n", p.Admin),
	}
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(src, pairs[i]) {
			return "", fmt.Errorf("the quickstart Caddyfile no longer contains %q", pairs[i])
		}
	}
	// One pass: a new port that starts with an old one (20923 after
	// 2092) is never rewritten again.
	src = strings.NewReplacer(pairs...).Replace(src)
	if loc := leftoverPort.FindStringIndex(src); loc != nil {
		return "", fmt.Errorf("a quickstart port is still in the rewritten Caddyfile: %q", src[max(0, loc[0]-40):loc[1]])
	}
	return src, nil
}

// Instance is a running quickstart.
type Instance struct {
	*e2e.Gateway
	// API is modulus_api's base URL (the README's http://127.0.0.1:2090).
	API string
	// Sandbox is modulus_sandbox's base URL (http://127.0.0.1:2091).
	Sandbox string
	// Webhook is modulus_webhook's URL (https://localhost:8443/webhooks/modulus).
	Webhook string
	// Ops is the operators' listener (http://127.0.0.1:2092): /metrics,
	// /readyz, /healthz.
	Ops string
}

// Start runs the quickstart on free ports, as `qrphgate run --config
// examples/quickstart/Caddyfile` from the repository root would: the
// working directory holds a copy of the committed fake-secrets/, so the
// file's relative {file.examples/quickstart/...} placeholders and its
// storage and spool paths resolve there.
func Start(t testing.TB) *Instance {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Instance {
	t.Helper()
	p := Ports{API: e2e.FreePort(t), Sandbox: e2e.FreePort(t), Webhook: e2e.FreePort(t), Ops: e2e.FreePort(t),
		Admin: fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))}
	src := Caddyfile(t)
	var env []string
	if opts.ForwardTo != "" {
		if !strings.Contains(src, forwardToLine) {
			t.Fatalf("the quickstart Caddyfile no longer contains %q", forwardToLine)
		}
		env = append(env, AppWebhookEnv+"="+opts.ForwardTo)
	}
	cfg, err := Rewrite(src, p)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	CopyFakeSecrets(t, dir)
	g := e2e.Start(t, e2e.Options{Caddyfile: cfg, AdminAddr: p.Admin, Dir: dir, Env: env})
	return &Instance{
		Gateway: g,
		API:     fmt.Sprintf("http://127.0.0.1:%d", p.API),
		Sandbox: fmt.Sprintf("http://127.0.0.1:%d", p.Sandbox),
		Webhook: fmt.Sprintf("https://localhost:%d/webhooks/modulus", p.Webhook),
		Ops:     fmt.Sprintf("http://127.0.0.1:%d", p.Ops),
	}
}

// CopyFakeSecrets puts the committed fake-secrets/ under
// root/examples/quickstart/, where the Caddyfile's placeholders look when
// root is the working directory.
func CopyFakeSecrets(t testing.TB, root string) {
	t.Helper()
	src := filepath.Join(Dir(), "fake-secrets")
	dst := filepath.Join(root, "examples", "quickstart", "fake-secrets")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
