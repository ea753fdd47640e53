package outbound

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/fakemodulus"
	"github.com/qrphgate/qrphgate/proxy"
)

func TestRetryOn429HonoursRetryAfter(t *testing.T) {
	t.Run("seconds", func(t *testing.T) {
		h := newHarness(t, hopts{fakeNow: true})
		t0 := h.clock.Now()
		h.fake.Fail(fakemodulus.Fault{Status: 429, RetryAfter: "2"})
		ch := h.async("POST", "/v1/pay/qr", createBody("RA-1"))
		h.waitTimers(1)
		h.clock.Advance(2 * time.Second)
		if rec := recv(t, ch); rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		calls := h.fake.CallsTo("/v1/pay/qr")
		if len(calls) != 2 || calls[1].Time.Sub(t0) != 2*time.Second {
			t.Fatalf("calls %d, retry at %v", len(calls), calls[len(calls)-1].Time.Sub(t0))
		}
		if h.obs.get("retry:create_qr:429") != 1 || h.obs.get("upstream:create_qr:429") != 1 {
			t.Fatalf("observer %v", h.obs.n)
		}
	})
	t.Run("HTTP-date", func(t *testing.T) {
		h := newHarness(t, hopts{fakeNow: true})
		t0 := h.clock.Now()
		h.fake.Fail(fakemodulus.Fault{Status: 429, RetryAfter: t0.Add(3 * time.Second).UTC().Format(http.TimeFormat)})
		ch := h.async("POST", "/v1/pay/qr", createBody("RA-2"))
		h.waitTimers(1)
		h.clock.Advance(3 * time.Second)
		if rec := recv(t, ch); rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if calls := h.fake.CallsTo("/v1/pay/qr"); len(calls) != 2 || calls[1].Time.Sub(t0) != 3*time.Second {
			t.Fatalf("retry at %v", calls[len(calls)-1].Time.Sub(t0))
		}
	})
	t.Run("absent: backoff", func(t *testing.T) {
		h := newHarness(t, hopts{})
		h.fake.Fail(fakemodulus.Fault{Status: 429})
		ch := h.async("POST", "/v1/pay/qr", createBody("RA-3"))
		h.waitTimers(1)
		h.clock.Advance(50 * time.Millisecond) // Rand 0.5 of the 100ms base
		if rec := recv(t, ch); rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("beyond max_wait: no retry", func(t *testing.T) {
		h := newHarness(t, hopts{maxWait: 10 * time.Second})
		h.fake.Fail(fakemodulus.Fault{Status: 429, RetryAfter: "30"})
		rec := h.do("POST", "/v1/pay/qr", createBody("RA-4"))
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 429 || e.Error.Code != CodeUpstreamRateLimited || rec.Header().Get("Retry-After") != "30" {
			t.Fatalf("%d %s %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
		if n := len(h.fake.Calls()); n != 1 {
			t.Fatalf("%d calls", n)
		}
	})
	t.Run("retries exhausted", func(t *testing.T) {
		h := newHarness(t, hopts{retries: 2})
		h.fake.Fail(fakemodulus.Fault{Status: 429, RetryAfter: "1"}, fakemodulus.Fault{Status: 429, RetryAfter: "1"}, fakemodulus.Fault{Status: 429, RetryAfter: "1"})
		ch := h.async("POST", "/v1/pay/qr", createBody("RA-5"))
		for i := 0; i < 2; i++ {
			h.waitTimers(1)
			h.clock.Advance(time.Second)
		}
		if rec := recv(t, ch); rec.Code != 429 {
			t.Fatalf("%d", rec.Code)
		}
		if n := len(h.fake.Calls()); n != 3 {
			t.Fatalf("%d calls, want 3", n)
		}
	})
}

// A connection that fails before the request is written is retried (the
// provider cannot have seen it); with backoff from the fake clock.
func TestRetryConnectionFailureBeforeWrite(t *testing.T) {
	t.Run("refused, then up", func(t *testing.T) {
		tr := NewUpstreamTransport()
		var fails atomic.Int32
		fails.Store(2)
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if fails.Add(-1) >= 0 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
			}
			return dial(ctx, network, addr)
		}
		h := newHarness(t, hopts{transport: tr, retries: 2})
		ch := h.async("POST", "/v1/pay/qr", createBody("C-1"))
		h.waitTimers(1)
		h.clock.Advance(50 * time.Millisecond)
		h.waitTimers(1)
		h.clock.Advance(100 * time.Millisecond)
		if rec := recv(t, ch); rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if h.fake.Created() != 1 || h.obs.get("retry:create_qr:connect") != 2 {
			t.Fatalf("created %d, observer %v", h.fake.Created(), h.obs.n)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		h := newHarness(t, hopts{qrURL: "http://" + addr, retries: 2})
		ch := h.async("POST", "/v1/pay/qr", createBody("C-2"))
		h.waitTimers(1)
		h.clock.Advance(50 * time.Millisecond)
		h.waitTimers(1)
		h.clock.Advance(100 * time.Millisecond)
		rec := recv(t, ch)
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 502 || e.Error.Code != CodeUpstreamUnavailable {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if h.obs.get("upstream:create_qr:error") != 3 {
			t.Fatalf("attempts %v", h.obs.n)
		}
	})
}

// Once the request may have reached the provider, nothing is retried: a
// second attempt could create a second QR.
func TestNoRetryOnceTheRequestWasSent(t *testing.T) {
	for name, f := range map[string]fakemodulus.Fault{
		"reset after read": {ResetAfterRead: true},
		"500":              {Status: 500},
		"503":              {Status: 503},
		"timeout":          {Hang: true},
		"401":              {Status: 401},
		"400":              {Status: 400},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, hopts{retries: 2, timeout: 100 * time.Millisecond})
			h.fake.Fail(f)
			rec := h.do("POST", "/v1/pay/qr", createBody("N-1"))
			if rec.Code == 200 {
				t.Fatal("succeeded")
			}
			if n := len(h.fake.Calls()); n != 1 {
				t.Fatalf("%d provider calls, want exactly 1", n)
			}
		})
	}
}

// A reset before the provider reads the body may or may not follow the
// write on the client side; whatever the gateway decides, it must never
// make the provider create two QRs, and a 200 means exactly one.
func TestResetBeforeReadNeverCreatesTwice(t *testing.T) {
	for i := 0; i < 5; i++ {
		h := newHarness(t, hopts{retries: 2})
		h.fake.Fail(fakemodulus.Fault{ResetBeforeRead: true})
		ch := h.async("POST", "/v1/pay/qr", createBody("RB-1"))
		var rec interface{ Result() *http.Response }
		for rec == nil {
			select {
			case r := <-ch:
				rec = r
			case <-time.After(5 * time.Millisecond):
				h.clock.Advance(100 * time.Millisecond) // any backoff
			}
		}
		code := rec.Result().StatusCode
		if created := h.fake.Created(); created > 1 || (code == 200) != (created == 1) {
			t.Fatalf("status %d with %d QRs created", code, created)
		}
	}
}

func TestCredentialsFuse(t *testing.T) {
	h := newHarness(t, hopts{authFailures: 3})
	// A success in between resets the run.
	h.fake.Fail(fakemodulus.Fault{Status: 401}, fakemodulus.Fault{Status: 403})
	h.do("POST", "/v1/pay/qr", createBody("A-1"))
	h.do("POST", "/v1/pay/qr", createBody("A-2"))
	if rec := h.do("POST", "/v1/pay/qr", createBody("A-3")); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	h.fake.Fail(fakemodulus.Fault{Status: 401}, fakemodulus.Fault{Status: 401}, fakemodulus.Fault{Status: 401})
	for i := 0; i < 3; i++ {
		rec := h.do("POST", "/v1/pay/qr", createBody(fmt.Sprintf("A-x%d", i)))
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 401 || e.Error.Code != CodeUpstreamUnauthorized {
			t.Fatalf("rejection %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	before := len(h.fake.Calls())
	for _, path := range []string{"/v1/pay/qr", "/v1/webhooks"} {
		method, body := "POST", createBody("A-after")
		if path == "/v1/webhooks" {
			method, body = "GET", ""
		}
		rec := h.do(method, path, body)
		if e := decodeErr(t, rec.Body.Bytes()); rec.Code != 503 || e.Error.Code != CodeCredentialsRejected {
			t.Fatalf("%s after the fuse blew: %d %s", path, rec.Code, rec.Body)
		}
	}
	if len(h.fake.Calls()) != before {
		t.Fatal("a call reached the provider after the fuse blew")
	}
	// Ping carries no credentials and still works.
	if rec := h.do("GET", "/ping", ""); rec.Code != 200 {
		t.Fatalf("ping: %d", rec.Code)
	}
	if st := h.out.Status(t.Context()).Credentials; st.State != "rejected" || h.obs.get("fuse") != 1 {
		t.Fatalf("status %+v observer %v", st, h.obs.n)
	}
}

// A burst of concurrent calls with bad credentials must not all reach the
// provider before the first 401 comes back: while the credentials are
// unproven, one authenticated call is in flight at a time, so no more than
// auth_failures rejected calls ever reach it.
func TestCredentialsFuseBoundsAConcurrentBurst(t *testing.T) {
	h := newHarness(t, hopts{authFailures: 3})
	faults := make([]fakemodulus.Fault, 20)
	for i := range faults {
		faults[i] = fakemodulus.Fault{Status: 401}
	}
	h.fake.Fail(faults...)
	var chans []<-chan *httptest.ResponseRecorder
	for i := 0; i < 20; i++ {
		chans = append(chans, h.async("POST", "/v1/pay/qr", createBody(fmt.Sprintf("B-%d", i))))
	}
	codes := map[string]int{}
	for _, ch := range chans {
		rec := recv(t, ch)
		codes[decodeErr(t, rec.Body.Bytes()).Error.Code]++
	}
	if n := len(h.fake.Calls()); n != 3 {
		t.Fatalf("%d calls with bad credentials reached the provider, want 3 (codes %v)", n, codes)
	}
	if codes[CodeUpstreamUnauthorized] != 3 || codes[CodeCredentialsRejected] != 17 {
		t.Fatalf("answers %v", codes)
	}
}

// Once a call has succeeded, authenticated calls run concurrently again; a
// wary fuse makes the others wait, and gives up at the deadline.
func TestCredentialsFuseAdmit(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	f := newAuthFuse(3)
	release, err := f.Admit(t.Context(), clk, clk.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Unproven and the slot is taken: the next caller waits, then gives up.
	done := make(chan *proxy.Error, 1)
	go func() {
		_, err := f.Admit(t.Context(), clk, clk.Now().Add(time.Second))
		done <- err
	}()
	if !clk.WaitForTimers(1, 5*time.Second) {
		t.Fatal("second caller did not wait")
	}
	clk.Advance(time.Second)
	if err := <-done; err == nil || err.Code != CodeCredentialsUnverified || err.RetryAfter <= 0 {
		t.Fatalf("waiter: %+v", err)
	}
	f.Record(200)
	release()
	// Proven: admitted at once even while another call holds the slot.
	f.slot <- struct{}{}
	if _, err := f.Admit(t.Context(), clk, clk.Now()); err != nil {
		t.Fatalf("trusted fuse refused: %v", err)
	}
	<-f.slot
	// A rejection makes it wary again.
	f.Record(401)
	if f.trusted() {
		t.Fatal("a 401 must make the fuse wary")
	}
}
