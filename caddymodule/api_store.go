package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/store"
)

// outboundStores is what modulus_api keeps its shared state in.
type outboundStores struct {
	budget      store.RateBudget
	idempotency store.Idempotency
	// kind is "memory", "file" or "redis", for the status page.
	kind string
	// key identifies the back end (pool key; may hold a resolved password,
	// so it is never logged).
	key     string
	release func() error
}

// storePool holds the store back ends so that a reload keeps the rate
// budget and the idempotency cache (memory, file) or the connection (Redis).
var storePool = caddy.NewUsagePool()

type memoryStore struct{ *store.Memory }

func (memoryStore) Destruct() error { return nil }

type fileStore struct{ *store.FileStore }

func (f fileStore) Destruct() error { return f.Close() }

// anyPlaceholder matches a {...} placeholder inside a store URL.
var anyPlaceholder = regexp.MustCompile(`\{[^{}]+\}`)

const storeSyntax = "store must be memory, file:///absolute/path or redis://host:port/db (rediss:// for TLS)"

// checkStoreSpec validates the store option's syntax (Caddyfile time);
// placeholders (a password from {env.*}, a directory) stand for any value.
func checkStoreSpec(spec string) error {
	if spec == "" || spec == "memory" {
		return nil
	}
	if rest, ok := strings.CutPrefix(spec, "file://"); ok {
		if rest == "" || (rest[0] != '/' && rest[0] != '{') || strings.HasSuffix(rest, "/") {
			return errors.New("store: file:// takes an absolute file path, such as file:///var/lib/qrphgate/outbound.db")
		}
		return nil
	}
	return checkRedisSpec(spec, storeSyntax)
}

// checkRedisSpec validates a redis:// or rediss:// URL, or fails with syntax.
func checkRedisSpec(spec, syntax string) error {
	u, err := url.Parse(anyPlaceholder.ReplaceAllString(spec, "placeholder"))
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return errors.New(syntax)
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
// one per process), file:///path (a bbolt file that keeps the budget and
// the idempotency cache across restarts of this sidecar) or a Redis URL
// shared by replicas, whose password may be an {env.*} or {file.*}
// placeholder (an inline password is refused in production).
func openOutboundStore(ctx caddy.Context, spec, environment string) (*outboundStores, error) {
	if err := checkStoreSpec(spec); err != nil {
		return nil, err
	}
	switch {
	case spec == "" || spec == "memory":
		const key = "memory"
		v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) { return memoryStore{store.NewMemory(nil)}, nil })
		if err != nil {
			return nil, err
		}
		m := v.(memoryStore).Memory
		return &outboundStores{budget: m, idempotency: m, kind: "memory", key: key, release: poolRelease(key)}, nil

	case strings.HasPrefix(spec, "file://"):
		path := strings.TrimPrefix(caddy.NewReplacer().ReplaceKnown(spec, ""), "file://")
		if !filepath.IsAbs(path) {
			return nil, errors.New("store: file:// takes an absolute file path (a placeholder in it resolved to a relative one)")
		}
		key := "file|" + filepath.Clean(path)
		v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
			f, err := store.OpenFile(filepath.Clean(path), store.FileOptions{})
			if err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
			return fileStore{f}, nil
		})
		if err != nil {
			return nil, err
		}
		f := v.(fileStore).FileStore
		return &outboundStores{budget: f, idempotency: f, kind: "file", key: key, release: poolRelease(key)}, nil
	}

	if err := checkRedisPassword("store", spec, environment); err != nil {
		return nil, err
	}
	resolved := resolveRedisURL(caddy.NewReplacer(), spec)
	r, release, err := acquireRedis(ctx, resolved)
	if err != nil {
		return nil, err
	}
	return &outboundStores{budget: r, idempotency: r, kind: "redis", key: "redis|" + resolved, release: release}, nil
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
