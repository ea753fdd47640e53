// Package testenv decides what a test does when something it needs from the
// machine (a Redis server, a browser, Node) is missing: skip on a developer's
// laptop, fail under CI, so nothing skips silently where it must run.
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run under .ci/run (which exports CI=1).
func InCI() bool { return os.Getenv("CI") != "" }

// Missing skips t outside CI and fails it under CI, with the same message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI: "+format, args...)
	}
	t.Skipf("skipping (CI installs this): "+format, args...)
}
