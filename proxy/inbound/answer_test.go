package inbound

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// appAnswer is one scripted answer of the app: a status and, when set, a
// Retry-After made from the time of the request.
type appAnswer struct {
	status     int
	retryAfter func(now time.Time) string
}

// scriptedApp answers each delivery with the next scripted answer (2xx
// once the script is spent) and reports the fake time of each arrival.
func scriptedApp(t *testing.T, c *clock.Fake, script ...appAnswer) (*url.URL, <-chan time.Time) {
	arrived := make(chan time.Time, 100)
	answers := make(chan appAnswer, len(script))
	for _, a := range script {
		answers <- a
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := c.Now()
		a := appAnswer{status: http.StatusNoContent}
		select {
		case a = <-answers:
		default:
		}
		if a.retryAfter != nil {
			w.Header().Set("Retry-After", a.retryAfter(now))
		}
		w.WriteHeader(a.status)
		arrived <- now
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/payments/modulus")
	return u, arrived
}

func seconds(s string) func(time.Time) string { return func(time.Time) string { return s } }

// An app's 429 or 503 with Retry-After is not retried sooner (seconds or an
// HTTP date), a huge one is capped by the backoff maximum, and Retry-After
// on any other status, or a 429 without it, leaves the usual backoff.
func TestDeliveryHonoursRetryAfter(t *testing.T) {
	c := clock.NewFake(time.Time{})
	u, arrived := scriptedApp(t, c,
		appAnswer{http.StatusTooManyRequests, seconds("30")},
		appAnswer{http.StatusServiceUnavailable, func(now time.Time) string { return now.Add(10 * time.Second).UTC().Format(http.TimeFormat) }},
		appAnswer{http.StatusServiceUnavailable, seconds("3600")},
		appAnswer{http.StatusInternalServerError, seconds("30")},
		appAnswer{http.StatusTooManyRequests, nil},
	)
	spool := storetest.NewMemorySpool()
	t0 := c.Now()
	_ = spool.Put(context.Background(), spoolEvent("evt_0000000000TESTRETRYAFTER", t0, `{}`))
	cfg := DeliveryConfig{URL: u, Backoff: proxy.Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.5 }}}
	f := startDeliverer(t, spool, c, cfg, 1)

	// Attempt k's backoff alone would be Delay(k-1) = 0.5 * min(1m, 1s * 2^(k-1)).
	want := []time.Duration{
		0,
		30 * time.Second,  // 429 Retry-After: 30, over the 0.5 s backoff
		40 * time.Second,  // 503 Retry-After: an HTTP date 10 s on, over 1 s
		100 * time.Second, // 503 Retry-After: 3600, capped at the 1 m maximum
		104 * time.Second, // 500 with Retry-After: 30 ignored, 4 s backoff
		112 * time.Second, // 429 without Retry-After: 8 s backoff
	}
	for i, off := range want {
		at := recvTime(t, arrived)
		if got := at.Sub(t0); got != off {
			t.Fatalf("attempt %d at +%v, want +%v", i+1, got, off)
		}
		if i+1 == len(want) {
			break
		}
		next := t0.Add(want[i+1])
		if !c.WaitForTimerAt(next, 10*time.Second) {
			t.Fatalf("attempt %d: the deliverer never slept until +%v", i+1, want[i+1])
		}
		c.Advance(next.Sub(c.Now()))
	}
	eventually(t, "the event to be completed", func() bool { return pendingCount(t, spool) == 0 })
	if reasons := f.hooks.deadReasons(); len(reasons) != 0 {
		t.Fatalf("dead-lettered: %v", reasons)
	}
}

// A 410 Gone dead-letters the event at once, with that reason, however
// much of the redelivery window is left; a replay sends it again.
func TestDeliveryGoneDeadLettersAtOnce(t *testing.T) {
	c := clock.NewFake(time.Time{})
	u, arrived := scriptedApp(t, c, appAnswer{http.StatusInternalServerError, nil}, appAnswer{http.StatusGone, nil})
	spool := storetest.NewMemorySpool()
	t0 := c.Now()
	const id = "evt_0000000000TESTGONE00001"
	_ = spool.Put(context.Background(), spoolEvent(id, t0, `{}`))
	cfg := DeliveryConfig{URL: u, Backoff: proxy.Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.5 }}}
	f := startDeliverer(t, spool, c, cfg, 1)
	recvTime(t, arrived)
	if !c.WaitForTimerAt(t0.Add(500*time.Millisecond), 10*time.Second) {
		t.Fatal("the deliverer never slept until the retry")
	}
	c.Advance(500 * time.Millisecond)
	recvTime(t, arrived) // the 410
	eventually(t, "the dead letter", func() bool {
		st, _ := spool.Stats(context.Background())
		return st.DeadLetters == 1 && st.Pending == 0
	})
	dl, _ := spool.DeadLetters(context.Background(), 10)
	if len(dl) != 1 || dl[0].ID != id || dl[0].Attempts != 2 || dl[0].LastError != goneDetail || !dl[0].DeadAt.Equal(t0.Add(500*time.Millisecond)) {
		t.Fatalf("dead letter %+v", dl)
	}
	if reasons := f.hooks.deadReasons(); len(reasons) != 1 || reasons[0] != DeadLetterGone {
		t.Fatalf("DeadLettered(%v), want [gone]", reasons)
	}
	logged := f.logs.FilterMessage("webhook dead-lettered: the app answered 410 Gone").All()
	if len(logged) != 1 || logged[0].ContextMap()["reason"] != DeadLetterGone || logged[0].ContextMap()["event_id"] != id {
		t.Fatalf("dead-letter log %v", logged)
	}
	c.Advance(time.Hour)
	select {
	case at := <-arrived:
		t.Fatalf("a dead letter was attempted again at %v", at)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := f.d.Replay(context.Background(), id, "test"); err != nil {
		t.Fatal(err)
	}
	recvTime(t, arrived)
	eventually(t, "the replayed event to be completed", func() bool {
		st, _ := spool.Stats(context.Background())
		return st.DeadLetters == 0 && st.Pending == 0
	})
}

func TestRetryDelay(t *testing.T) {
	b := proxy.Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.5 }}
	for _, tc := range []struct {
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{0, 100 * time.Millisecond, 500 * time.Millisecond}, // sooner than the backoff: the backoff
		{0, 30 * time.Second, 30 * time.Second},
		{0, time.Hour, time.Minute},
		{10, 0, 30 * time.Second},
		{10, 45 * time.Second, 45 * time.Second},
		{10, proxy.MaxRetryAfter, time.Minute},
	} {
		if got := retryDelay(b, tc.attempt, tc.retryAfter); got != tc.want {
			t.Errorf("retryDelay(%d, %v) = %v, want %v", tc.attempt, tc.retryAfter, got, tc.want)
		}
	}
}

func TestAppRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		status int
		header string
		want   time.Duration
	}{
		{429, "7", 7 * time.Second},
		{503, "Thu, 15 Jan 2026 10:31:00 GMT", time.Minute},
		{503, "", 0},
		{503, "soon", 0},
		{500, "7", 0},
		{410, "7", 0},
		{200, "7", 0},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		if tc.header != "" {
			resp.Header.Set("Retry-After", tc.header)
		}
		if got := appRetryAfter(resp, now); got != tc.want {
			t.Errorf("%d Retry-After %q: %v, want %v", tc.status, tc.header, got, tc.want)
		}
	}
}

func recvTime(t *testing.T, ch <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery arrived")
		return time.Time{}
	}
}
