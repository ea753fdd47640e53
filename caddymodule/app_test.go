package caddymodule

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// OnStart functions run at Start, in order, and once; OnStop functions at
// Stop, last first; a function registered after Start runs at once.
func TestAppLifecycle(t *testing.T) {
	a := new(App)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	var got []string
	a.OnStart(func() { got = append(got, "start1") })
	a.OnStart(func() { got = append(got, "start2") })
	a.OnStop(func() { got = append(got, "stop1") })
	a.OnStop(func() { got = append(got, "stop2") })
	if len(got) != 0 {
		t.Fatalf("ran before Start: %v", got)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	a.OnStart(func() { got = append(got, "late") })
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil { // nothing runs twice
		t.Fatal(err)
	}
	if want := "start1 start2 late stop2 stop1"; strings.Join(got, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(got, " "), want)
	}
}

// A module provisioned without a config (as unit tests do) has no app:
// onConfigStart then runs at once.
func TestModulusAppWithoutConfig(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	app, err := modulusApp(ctx)
	if app != nil || err != nil {
		t.Fatalf("app %v, err %v", app, err)
	}
	ran := false
	onConfigStart(app, func() { ran = true })
	if !ran {
		t.Fatal("without an app, onConfigStart must run at once")
	}
}

// The global block adapts to the modulus app; unknown and repeated options
// and arguments are refused with the file and line.
func TestAppCaddyfile(t *testing.T) {
	out, err := adapt(t, "Caddyfile", "{\n\tmodulus {\n\t}\n}\n\nhttp://127.0.0.1:9180 {\n\tmodulus_metrics\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil || cfg.Apps["modulus"] == nil {
		t.Fatalf("no modulus app in %s (%v)", out, err)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"unknown option", "{\n\tmodulus {\n\t\tledgr memory\n\t}\n}\n", `modulus: unknown option "ledgr", at Caddyfile:3`},
		{"argument", "{\n\tmodulus memory\n}\n", "modulus takes no arguments, only a block of options, at Caddyfile:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := adaptErr(t, tc.src+"\nhttp://127.0.0.1:9180 {\n\tmodulus_metrics\n}\n"); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q lacks %q", msg, tc.want)
			}
		})
	}
}
