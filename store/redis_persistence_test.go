package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// Persistence reports what the server runs with, and tells a server that
// refuses CONFIG (as managed ones do) from one that cannot be reached.
func TestRedisPersistence(t *testing.T) {
	ctx := context.Background()
	open := func(url string) *store.Redis {
		r, err := store.OpenRedis(ctx, url, store.RedisOptions{AllowDown: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}

	durable := redistest.Start(t, redistest.Options{AppendOnly: true})
	p, err := open(durable.URL()).Persistence(ctx)
	if err != nil || p.AppendOnly != "yes" || p.AppendFsync != "always" || p.Save != "" {
		t.Fatalf("appendonly server: %+v %v", p, err)
	}

	volatile := redistest.Start(t, redistest.Options{Args: []string{"--save", "3600 1"}})
	p, err = open(volatile.URL()).Persistence(ctx)
	if err != nil || p.AppendOnly != "no" || p.Save != "3600 1" {
		t.Fatalf("server without appendonly: %+v %v", p, err)
	}

	managed := redistest.Start(t, redistest.Options{Args: []string{"--rename-command", "CONFIG", ""}})
	_, err = open(managed.URL()).Persistence(ctx)
	if !errors.Is(err, store.ErrConfigRefused) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a server that refuses CONFIG: %v", err)
	}

	down := open(volatile.URL())
	volatile.Kill()
	if _, err := down.Persistence(ctx); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrConfigRefused) {
		t.Fatalf("a server that is down: %v", err)
	}
}
