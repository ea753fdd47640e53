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

// redis:// pointed at a Cluster node would answer MOVED for most keys: it
// is refused at start-up, even with AllowDown, naming the right form.
func TestOpenRedisRefusesAClusterNodeAsOneServer(t *testing.T) {
	t.Parallel()
	node := redistest.SharedCluster(t).Nodes()[0]
	_, err := store.OpenRedis(context.Background(), node.URL(), store.RedisOptions{AllowDown: true})
	if err == nil || !strings.Contains(err.Error(), "redis-cluster://") {
		t.Fatalf("err = %v, want a refusal naming redis-cluster://", err)
	}
}

// A server that may evict keys is named in a warning at start-up; one with
// noeviction is not.
func TestOpenRedisWarnsWhenKeysMayBeEvicted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	for _, tc := range []struct {
		policy string
		warn   bool
	}{{"noeviction", false}, {"allkeys-lru", true}} {
		if err := srv.Do(ctx, "CONFIG", "SET", "maxmemory-policy", tc.policy).Err(); err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zapcore.WarnLevel)
		r, err := store.OpenRedis(ctx, srv.URL(), store.RedisOptions{Logger: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
		warned := logs.FilterMessageSnippet("maxmemory-policy noeviction").Len()
		if (warned == 1) != tc.warn {
			t.Fatalf("maxmemory-policy %s: %d warnings, want warning %v", tc.policy, warned, tc.warn)
		}
	}
}
