package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// What a Redis Cluster needs beyond the client's own routing: a way back
// to the right node when one dies, and one connection to the primary of a
// key's slot for WAIT.

// reloadHook makes a Cluster client reload its map of the slots when a
// command fails for want of a node. The client reloads on MOVED, which
// only a live node can answer; a command whose node died keeps dialing it
// until a failover is noticed some other way.
type reloadHook struct{ c *redis.ClusterClient }

func (reloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isOutage(err) {
			k.c.ReloadState(ctx)
		}
		return err
	}
}

func (k reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if isOutage(err) {
			k.c.ReloadState(ctx)
		}
		return err
	}
}

// onPrimary runs fn on one connection to the primary that holds key (the
// server, Sentinel's current primary, or the Cluster node serving key's
// slot). A Cluster node that no longer serves the slot answers MOVED: the
// client reloads its map of the slots, and the call fails as unavailable
// (the caller's retry goes to the right node).
func (r *Redis) onPrimary(ctx context.Context, key string, fn func(*redis.Conn) error) error {
	var node *redis.Client
	switch c := r.c.(type) {
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			c.ReloadState(ctx)
			r.health.observe(err, "cluster slots")
			return unavailable("cluster slots", err)
		}
		node = n
	case *redis.Client:
		node = c
	default:
		return fmt.Errorf("store: unexpected Redis client %T", r.c)
	}
	conn := node.Conn()
	defer conn.Close()
	cc, cluster := r.c.(*redis.ClusterClient)
	if cluster {
		conn.AddHook(healthHook{r.health}) // a node's own client has none
	}
	err := fn(conn)
	if cluster && (isRedirect(err) || isOutage(err)) {
		cc.ReloadState(ctx)
	}
	return err
}

// isRedirect reports a Cluster node's MOVED or ASK answer.
func isRedirect(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	return strings.HasPrefix(reply.Error(), "MOVED ") || strings.HasPrefix(reply.Error(), "ASK ")
}
