package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/store"
)

// outboundStores is what modulus_api keeps its shared state in.
type outboundStores struct {
	budget      store.RateBudget
	idempotency store.Idempotency
	// kind is "memory" or "redis", for the status page.
	kind string
	// key identifies the back end (pool key; may hold a resolved password,
	// so it is never logged).
	key     string
	release func() error
}

// storePool holds the store back ends so that a reload keeps the rate
// budget and the idempotency cache (memory) or the connection (Redis).
var storePool = caddy.NewUsagePool()

type memoryStore struct{ *store.Memory }

func (memoryStore) Destruct() error { return nil }

type redisStore struct{ *store.Redis }

func (r redisStore) Destruct() error { return r.Close() }

// anyPlaceholder matches a {...} placeholder inside a store URL.
var anyPlaceholder = regexp.MustCompile(`\{[^{}]+\}`)

// checkStoreSpec validates the store option's syntax (Caddyfile time);
// placeholders (a password from {env.*}) stand for any value.
func checkStoreSpec(spec string) error {
	if spec == "" || spec == "memory" {
		return nil
	}
	u, err := url.Parse(anyPlaceholder.ReplaceAllString(spec, "placeholder"))
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return errors.New("store must be memory or redis://host:port/db (rediss:// for TLS)")
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		for _, c := range db {
			if c < '0' || c > '9' {
				return errors.New("store: the Redis database in the URL path must be a number")
			}
		}
	}
	return nil
}

// openOutboundStore opens the store named by spec: "memory" (the default,
// one per process) or a Redis URL, whose password may be an {env.*} or
// {file.*} placeholder (an inline password is refused in production).
func openOutboundStore(ctx caddy.Context, spec, environment string) (*outboundStores, error) {
	if err := checkStoreSpec(spec); err != nil {
		return nil, err
	}
	if spec == "" || spec == "memory" {
		const key = "memory"
		v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) { return memoryStore{store.NewMemory(nil)}, nil })
		if err != nil {
			return nil, err
		}
		m := v.(memoryStore).Memory
		return &outboundStores{budget: m, idempotency: m, kind: "memory", key: key, release: poolRelease(key)}, nil
	}

	if pw := redisPassword(spec); pw != "" && !secretPlaceholder.MatchString(pw) && environment != policy.Sandbox {
		return nil, errors.New("store: give the Redis password as {env.NAME} or {file.PATH}: an inline one is stored in the config")
	}
	resolved := caddy.NewReplacer().ReplaceKnown(spec, "")
	key := "redis|" + resolved
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r, err := store.OpenRedis(octx, resolved, store.RedisOptions{})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", store.RedactURL(resolved), err)
		}
		return redisStore{r}, nil
	})
	if err != nil {
		return nil, err
	}
	r := v.(redisStore).Redis
	return &outboundStores{budget: r, idempotency: r, kind: "redis", key: key, release: poolRelease(key)}, nil
}

// redisPassword returns the raw password part of a redis URL ("" if none).
func redisPassword(spec string) string {
	_, rest, _ := strings.Cut(spec, "://")
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	_, pw, _ := strings.Cut(userinfo, ":")
	return pw
}

func poolRelease(key string) func() error {
	return func() error {
		_, err := storePool.Delete(key)
		return err
	}
}
