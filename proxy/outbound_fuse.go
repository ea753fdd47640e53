package proxy

import (
	"net/http"
	"sync/atomic"
)

// DefaultAuthFailures is how many consecutive 401/403 answers blow the
// credentials fuse by default.
const DefaultAuthFailures = 3

// authFuse stops authenticated upstream calls after a run of consecutive
// 401/403 answers: the provider locks accounts after repeated failed
// authentication, and a misconfigured sidecar retrying bad credentials
// would do exactly that. Once blown it stays blown for the life of the
// configuration: fix the credentials and reload (any config load resets it).
type authFuse struct {
	threshold   int32
	consecutive atomic.Int32
	blown       atomic.Bool
}

func newAuthFuse(threshold int) *authFuse {
	if threshold <= 0 {
		threshold = DefaultAuthFailures
	}
	return &authFuse{threshold: int32(threshold)}
}

// Blown reports whether authenticated calls are stopped.
func (f *authFuse) Blown() bool { return f.blown.Load() }

// Record notes an upstream status and reports whether this answer blew the
// fuse. A 2xx resets the run; other statuses leave it as it is (a 400 does
// not prove the credentials good, a 5xx proves nothing).
func (f *authFuse) Record(status int) (blewNow bool) {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		if f.consecutive.Add(1) >= f.threshold {
			return f.blown.CompareAndSwap(false, true)
		}
	case status >= 200 && status < 300:
		if f.consecutive.Load() != 0 {
			f.consecutive.Store(0)
		}
	}
	return false
}

// CredentialsStatus is the fuse's state for GET /modulus/status.
type CredentialsStatus struct {
	// State is "ok" or "rejected" (the fuse is blown).
	State                   string `json:"state"`
	ConsecutiveAuthFailures int    `json:"consecutive_auth_failures"`
	Threshold               int    `json:"threshold"`
}

func (f *authFuse) status() CredentialsStatus {
	st := CredentialsStatus{State: "ok", ConsecutiveAuthFailures: int(f.consecutive.Load()), Threshold: int(f.threshold)}
	if f.Blown() {
		st.State = "rejected"
	}
	return st
}

func credentialsRejected() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeCredentialsRejected,
		Message: "the provider rejected the configured credentials repeatedly; calls are stopped until the configuration is fixed and reloaded"}
}
