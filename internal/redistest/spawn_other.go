//go:build !linux

package redistest

import "os/exec"

// spawn starts cmd. Only Linux has a parent-death signal: elsewhere a
// crashed test can leave its servers running.
func spawn(cmd *exec.Cmd) error { return cmd.Start() }
