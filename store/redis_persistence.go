package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrConfigRefused is the error of Persistence when the server refuses
// CONFIG GET, as managed services do (the command renamed, disabled or
// denied by an ACL).
var ErrConfigRefused = errors.New("redis refused CONFIG GET")

// RedisPersistence is what a Redis server says of its durability
// settings. A spool's acknowledged webhooks survive a Redis restart only
// with AppendOnly "yes", and a Redis crash only with AppendFsync "always".
type RedisPersistence struct {
	// AppendOnly is the append-only file setting: "yes" or "no".
	AppendOnly string `json:"appendonly"`
	// AppendFsync is how often the append-only file is fsynced:
	// "always", "everysec" or "no".
	AppendFsync string `json:"appendfsync"`
	// Save is the snapshot schedule ("3600 1 300 100"); "" when off.
	Save string `json:"save"`
}

// Persistence asks the server for its persistence settings (CONFIG GET).
// A refusal wraps ErrConfigRefused with the server's answer; a server that
// cannot be reached wraps ErrUnavailable.
func (r *Redis) Persistence(ctx context.Context) (RedisPersistence, error) {
	var p RedisPersistence
	cfg, err := r.c.ConfigGet(ctx, "append*").Result()
	if err == nil {
		var save map[string]string
		save, err = r.c.ConfigGet(ctx, "save").Result()
		cfg["save"] = save["save"]
	}
	var refused redis.Error
	switch {
	case errors.As(err, &refused):
		return p, fmt.Errorf("%w: %v", ErrConfigRefused, err)
	case err != nil:
		return p, unavailable("config get", err)
	}
	p.AppendOnly, p.AppendFsync, p.Save = cfg["appendonly"], cfg["appendfsync"], cfg["save"]
	if p.AppendOnly == "" {
		return p, fmt.Errorf("%w: the answer has no appendonly setting", ErrConfigRefused)
	}
	return p, nil
}
