package preflight

// ClockState is what the system says of its clock's synchronisation.
type ClockState struct {
	// Known is false when the system cannot say (not Linux, or the query
	// failed: see Detail).
	Known bool
	// Synchronised is the kernel's view: an NTP (or PTP) daemon keeps the
	// clock disciplined.
	Synchronised bool
	// Detail is the evidence, for the reason text.
	Detail string
}

// SystemClock asks the kernel whether the clock is synchronised.
func SystemClock() ClockState { return systemClock() }

// ClockVerdict judges the clock: webhook timestamps, the idempotency
// window, certificate validity and the provider's QR expiry all assume a
// correct clock. An unknown or unsynchronised clock is a warning.
func ClockVerdict(s ClockState) Verdict {
	switch {
	case !s.Known:
		return Warning("the system cannot tell whether the clock is synchronised ("+s.Detail+")",
			"make sure an NTP client (chrony, systemd-timesyncd) keeps this host's clock synchronised")
	case !s.Synchronised:
		return Warning("the kernel says the clock is not synchronised ("+s.Detail+")",
			"run an NTP client (chrony, systemd-timesyncd) and check `timedatectl show -p NTPSynchronized`")
	}
	return Pass("the kernel says the clock is synchronised (" + s.Detail + ")")
}
