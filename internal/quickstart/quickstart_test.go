package quickstart

import (
	"strings"
	"testing"
)

var testPorts = Ports{API: 41001, Sandbox: 41002, Webhook: 41003, Ops: 41005, Admin: "127.0.0.1:41004"}

// The committed file moves entirely to the test's ports.
func TestRewriteCommittedCaddyfile(t *testing.T) {
	got, err := Rewrite(Caddyfile(t), testPorts)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"http://127.0.0.1:41001 {", "http://127.0.0.1:41002 {", "https://localhost:41003 {", "http://127.0.0.1:41005 {",
		"qr_url http://127.0.0.1:41002", "callbacks https://localhost:41003/webhooks/modulus",
		"forward_to {$QRPHGATE_APP_WEBHOOK_URL:http://127.0.0.1:41002/sandbox/inbox}", "\tadmin 127.0.0.1:41004\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten Caddyfile lacks %q", want)
		}
	}
}

// A new port that begins with a quickstart port (the sandbox on 20923, the
// operators' 2092 still to rewrite) is left as it was given.
func TestRewriteNewPortsAreFinal(t *testing.T) {
	p := Ports{API: 20901, Sandbox: 20923, Webhook: 20934, Ops: 20945, Admin: "127.0.0.1:20956"}
	got, err := Rewrite(Caddyfile(t), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"http://127.0.0.1:20923 {", "webhooks_url http://127.0.0.1:20923\n", "http://127.0.0.1:20945 {"} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten Caddyfile lacks %q", want)
		}
	}
}

// A Caddyfile the rewrite does not fully understand is refused, so a test
// can never run on the quickstart's fixed ports by accident.
func TestRewriteRefuses(t *testing.T) {
	const global = "{\n\tskip_install_trust\n}\n"
	ok := global + "http://127.0.0.1:2090 {\n}\nhttp://127.0.0.1:2091 {\n}\nhttps://localhost:8443 {\n}\nhttp://127.0.0.1:2092 {\n}\n"
	if _, err := Rewrite(ok, testPorts); err != nil {
		t.Fatalf("minimal file: %v", err)
	}
	for name, src := range map[string]string{
		"no sandbox address":     strings.Replace(ok, "127.0.0.1:2091", "127.0.0.1:3000", 1),
		"no skip_install_trust":  strings.Replace(ok, "\tskip_install_trust\n", "", 1),
		"an admin address":       strings.Replace(ok, "{\n\tskip", "{\n\tadmin localhost:2999\n\tskip", 1),
		"another form of a port": ok + "http://[::1]:2090 {\n}\n",
		"the webhook port alone": ok + ":8443 {\n}\n",
		"the ops port alone":     ok + ":2092 {\n}\n",
	} {
		if _, err := Rewrite(src, testPorts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The app runs' forward_to variable is in the committed file, as
// StartWith expects it.
func TestCommittedForwardTo(t *testing.T) {
	if !strings.Contains(Caddyfile(t), forwardToLine) {
		t.Errorf("the quickstart Caddyfile lacks %q", forwardToLine)
	}
}
