package store_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/store"
)

// A Redis spool on a server with appendonly off says so when it opens
// (docs/replicas.md promises this warning); with appendonly on it says
// nothing.
func TestRedisSpoolWarnsWithoutAppendOnly(t *testing.T) {
	for _, tc := range []struct {
		name       string
		appendOnly bool
		wantWarn   bool
	}{
		{"appendonly no", false, true},
		{"appendonly yes", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AppendOnly: tc.appendOnly})
			ctx := context.Background()
			r, err := store.OpenRedis(ctx, srv.URL(), store.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			core, logs := observer.New(zapcore.DebugLevel)
			s, err := store.NewRedisSpool(ctx, r, store.RedisSpoolOptions{Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var warnings []observer.LoggedEntry
			for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
				if strings.Contains(e.Message, "appendonly") {
					warnings = append(warnings, e)
				}
			}
			if !tc.wantWarn {
				if len(warnings) != 0 {
					t.Fatalf("warned with appendonly yes: %v", warnings)
				}
				return
			}
			if len(warnings) != 1 {
				t.Fatalf("%d appendonly warnings, want 1; logged: %v", len(warnings), logs.All())
			}
			w := warnings[0]
			if !strings.Contains(w.Message, "appendonly yes") || !strings.Contains(w.Message, "appendfsync always") {
				t.Errorf("warning %q does not say what to set", w.Message)
			}
			if got := w.ContextMap()["store"]; got != r.Name() {
				t.Errorf("warning names store %v, want %q", got, r.Name())
			}
		})
	}
}
