package outbound

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
)

// DefaultAuthFailures is how many consecutive 401/403 answers blow the
// credentials fuse by default.
const DefaultAuthFailures = 3

// authFuse stops authenticated upstream calls after a run of consecutive
// 401/403 answers: the provider locks accounts after repeated failed
// authentication, and a misconfigured sidecar retrying bad credentials
// would do exactly that. Once blown it stays blown for the life of the
// configuration: fix the credentials and reload (any config load resets it).
//
// Counting answers is not enough on its own: a burst of concurrent calls
// with bad credentials would all reach the provider before the first 401
// came back. So while the credentials are unproven (no 2xx since the
// configuration loaded) or the last authenticated answer was a rejection,
// only one authenticated call is in flight at a time; the others wait for
// its outcome. At most threshold rejected calls ever reach the provider.
type authFuse struct {
	threshold   int32
	consecutive atomic.Int32
	blown       atomic.Bool
	proven      atomic.Bool
	// slot admits the single authenticated call while the fuse is wary.
	slot chan struct{}
}

func newAuthFuse(threshold int) *authFuse {
	if threshold <= 0 {
		threshold = DefaultAuthFailures
	}
	return &authFuse{threshold: int32(threshold), slot: make(chan struct{}, 1)}
}

// trusted reports whether authenticated calls may run concurrently.
func (f *authFuse) trusted() bool { return f.proven.Load() && f.consecutive.Load() == 0 }

func noRelease() {}

// Admit lets one authenticated call proceed. It returns at once when the
// credentials are trusted; otherwise the caller waits (until deadline) for
// the single in-flight call to finish, and must call release once the
// answer's status has been recorded.
func (f *authFuse) Admit(ctx context.Context, clk clock.Clock, deadline time.Time) (release func(), err *proxy.Error) {
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if f.Blown() {
			return nil, credentialsRejected()
		}
		if f.trusted() {
			return noRelease, nil
		}
		acquired := false
		select { // uncontended: no timer (tests count the fake clock's timers)
		case f.slot <- struct{}{}:
			acquired = true
		default:
		}
		if !acquired && timer == nil {
			timer = clk.NewTimer(deadline.Sub(clk.Now()))
		}
		if acquired {
			if f.Blown() || f.trusted() {
				<-f.slot
				continue
			}
			return func() { <-f.slot }, nil
		}
		select {
		case f.slot <- struct{}{}:
			// The state may have changed while this call waited.
			if f.Blown() || f.trusted() {
				<-f.slot
				continue
			}
			return func() { <-f.slot }, nil
		case <-ctx.Done():
			return nil, clientClosed(ctx.Err())
		case <-timer.C():
			return nil, &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeCredentialsUnverified, RetryAfter: time.Second,
				Message: "another call is still checking the credentials with the provider; retry shortly"}
		}
	}
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
		f.proven.Store(true)
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

func credentialsRejected() *proxy.Error {
	return &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeCredentialsRejected,
		Message: "the provider rejected the configured credentials repeatedly; calls are stopped until the configuration is fixed and reloaded"}
}
