package preflight

import (
	"runtime"
	"testing"
)

func TestClockVerdict(t *testing.T) {
	if v := ClockVerdict(ClockState{Known: true, Synchronised: true, Detail: "d"}); v.Status != OK {
		t.Errorf("synchronised: %+v", v)
	}
	for _, s := range []ClockState{{Known: true, Detail: "state 5"}, {Detail: "not checked"}} {
		if v := ClockVerdict(s); v.Status != Warn || v.Fix == "" {
			t.Errorf("%+v: %+v", s, v)
		}
	}
}

// The kernel answers on Linux (synchronised or not is the machine's
// business); elsewhere the state is unknown.
func TestSystemClock(t *testing.T) {
	s := SystemClock()
	if s.Detail == "" || s.Known != (runtime.GOOS == "linux") {
		t.Fatalf("%+v on %s", s, runtime.GOOS)
	}
}
