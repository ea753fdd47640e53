package preflight

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// systemClock reads the kernel's NTP state with adjtimex(2) (modes 0: a
// read, allowed without privileges and inside containers, where it
// reports the host's clock). The clock is unsynchronised when the state
// is TIME_ERROR or STA_UNSYNC is set, as timedatectl's NTPSynchronized
// reports it.
func systemClock() ClockState {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ClockState{Detail: "adjtimex: " + err.Error()}
	}
	maxErr := time.Duration(tx.Maxerror) * time.Microsecond
	if state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
		return ClockState{Known: true, Detail: fmt.Sprintf("adjtimex: state %d, status %#x", state, tx.Status)}
	}
	return ClockState{Known: true, Synchronised: true, Detail: fmt.Sprintf("adjtimex: maximum error %s", maxErr)}
}
