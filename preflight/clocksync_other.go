//go:build !linux

package preflight

import "runtime"

// systemClock cannot ask the kernel outside Linux.
func systemClock() ClockState {
	return ClockState{Detail: "not checked on " + runtime.GOOS}
}
