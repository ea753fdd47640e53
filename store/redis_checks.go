package store

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Checks of the deployment's settings, made when a store or spool opens.
// Managed services may refuse CONFIG and INFO; then nothing is said.

// checkServer refuses a URL of the wrong mode for its deployment (a
// Cluster node behind redis:// answers MOVED for most keys), and warns
// when the servers may evict keys: an evicted pending webhook is lost, an
// evicted idempotency answer lets a duplicate create a second QR, an
// evicted rate window lets calls through over the limit.
func (r *Redis) checkServer(ctx context.Context, log *zap.Logger) error {
	if r.target.Mode != RedisCluster {
		if info, err := r.c.Info(ctx, "cluster").Result(); err == nil && strings.Contains(info, "cluster_enabled:1") {
			return fmt.Errorf("store: %s is a Redis Cluster node; name the cluster with redis-cluster://host:port,host:port,... (rediss-cluster:// for TLS)", r.name)
		}
	}
	var evicting []string
	_ = r.eachPrimary(ctx, func(ctx context.Context, c redis.Cmdable) error {
		cfg, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if p, ok := cfg["maxmemory-policy"]; err == nil && ok && p != "noeviction" {
			evicting = append(evicting, p)
		}
		return nil
	})
	if len(evicting) > 0 {
		log.Warn("the Redis server may evict keys (maxmemory-policy is not noeviction): an evicted pending webhook, idempotent answer or rate window is lost; set maxmemory-policy noeviction",
			zap.String("store", r.name), zap.String("maxmemory_policy", evicting[0]))
	}
	return nil
}

// checkDurability warns when a server would lose acknowledged events on a
// restart (appendonly off).
func (r *Redis) checkDurability(ctx context.Context, log *zap.Logger) {
	off := false
	_ = r.eachPrimary(ctx, func(ctx context.Context, c redis.Cmdable) error {
		cfg, err := c.ConfigGet(ctx, "appendonly").Result()
		if v, ok := cfg["appendonly"]; err == nil && ok && v != "yes" {
			off = true
		}
		return nil
	})
	if off {
		log.Warn("the Redis server behind the spool has appendonly off: a Redis restart loses every pending webhook; set appendonly yes and appendfsync always",
			zap.String("store", r.name))
	}
}

// eachPrimary calls fn on every primary, one at a time: each of a
// Cluster's, or the one server.
func (r *Redis) eachPrimary(ctx context.Context, fn func(context.Context, redis.Cmdable) error) error {
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return fn(ctx, c)
		})
	}
	return fn(ctx, r.c)
}
