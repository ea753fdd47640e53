package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// SharedAddr is the shared Redis server that .ci/run starts, which tests
// use under key prefixes of their own.
const SharedAddr = "127.0.0.1:6379"

// DropKeys deletes every key under prefix on the shared server, so a test
// leaves nothing behind; a failure is logged, never fatal.
func DropKeys(t testing.TB, prefix string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: SharedAddr})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("listing the test keys under %s: %v", prefix, err)
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Logf("dropping %d test keys: %v", len(keys), err)
		}
	}
}
