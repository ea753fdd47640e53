package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// rediss:// against a real TLS-only redis-server whose certificate comes
// from a private CA: trusted through RedisOptions.RootCAs it works end to
// end; with the system roots, or spoken to in plain text, it fails with
// ErrUnavailable at once.
func TestRedisTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	if !strings.HasPrefix(srv.URL(), "rediss://") {
		t.Fatalf("URL %q is not rediss://", srv.URL())
	}
	ctx := context.Background()

	t.Run("round trip with the private CA", func(t *testing.T) {
		r, err := store.OpenRedis(ctx, srv.URL(), store.RedisOptions{RootCAs: srv.RootCAs(), Prefix: "tls-test:"})
		if err != nil {
			t.Fatalf("OpenRedis(%s): %v", srv.URL(), err)
		}
		defer r.Close()
		g, err := r.Take(ctx, "acct", 1, time.Minute)
		if err != nil || !g.OK || g.Used != 1 {
			t.Fatalf("first Take: %+v, %v; want admitted, 1 used", g, err)
		}
		g, err = r.Take(ctx, "acct", 1, time.Minute)
		if err != nil || g.OK || g.Used != 1 || g.RetryAfter <= 0 {
			t.Fatalf("second Take: %+v, %v; want refused with a wait (the server kept the first)", g, err)
		}
		if st := r.State(); !st.Up {
			t.Fatalf("state %+v, want up", st)
		}
	})

	t.Run("the system roots do not trust the private CA", func(t *testing.T) {
		_, err := store.OpenRedis(ctx, srv.URL(), store.RedisOptions{DialTimeout: time.Second})
		t.Logf("err: %v", err)
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want ErrUnavailable for an untrusted certificate", err)
		}
	})

	t.Run("plain redis:// to the TLS port", func(t *testing.T) {
		raw := "redis://:FAKE-redis-password@" + srv.Addr() + "/0"
		_, err := store.OpenRedis(ctx, raw, store.RedisOptions{DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
		t.Logf("err: %v", err)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		// The server hangs up on a plain-text client: the error is not
		// the client giving up on a reply.
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("err = %v: the client waited out its read timeout", err)
		}
		if strings.Contains(err.Error(), "FAKE-redis-password") {
			t.Fatalf("error reveals the password: %v", err)
		}
	})
}

// A rediss:// URL asking go-redis to skip certificate verification is
// refused, without repeating the password.
func TestRedisRefusesSkipVerify(t *testing.T) {
	_, err := store.OpenRedis(context.Background(), "rediss://:FAKE-pw-do-not-use@127.0.0.1:6380/0?skip_verify=true", store.RedisOptions{})
	if err == nil || !strings.Contains(err.Error(), "skip_verify") || strings.Contains(err.Error(), "FAKE-pw") {
		t.Fatalf("err = %v, want a refusal naming skip_verify and not the password", err)
	}
}
