package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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

const storeSyntax = "store must be memory, file:///absolute/path, redis://host:port/db, " +
	"redis-cluster://host:port,host:port,... or redis-sentinel://host:port,host:port/MASTERNAME[/db] " +
	"(rediss://, rediss-cluster://, rediss-sentinel:// for TLS)"

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
	return checkRedisSpec("store", spec, storeSyntax)
}

// checkRedisSpec validates a Redis URL of any form (store.ParseRedisURL)
// given to option opt, or fails with syntax when it is not one. Each
// placeholder stands for a value: in the address list, for a whole entry
// (an {env.NAME} may hold host:port, or several).
func checkRedisSpec(opt, spec, syntax string) error {
	if !store.IsRedisURL(spec) {
		return errors.New(syntax)
	}
	if _, err := store.ParseRedisURL(probeRedisURL(spec)); err != nil {
		return fmt.Errorf("%s: %s", opt, strings.TrimPrefix(err.Error(), "store: "))
	}
	return nil
}

// probeRedisURL replaces the placeholders of a Redis URL with values that
// parse, so that the rest of its syntax can be checked before they are
// resolved.
func probeRedisURL(spec string) string {
	scheme, rest, _ := strings.Cut(spec, "://")
	userinfo := ""
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, rest = rest[:at+1], rest[at+1:]
	}
	hosts, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts, tail = rest[:i], rest[i:]
	}
	entries := strings.Split(hosts, ",")
	for i, e := range entries {
		if anyPlaceholder.MatchString(e) {
			entries[i] = "placeholder:1"
		}
	}
	return scheme + "://" + anyPlaceholder.ReplaceAllString(userinfo, "placeholder") +
		strings.Join(entries, ",") + anyPlaceholder.ReplaceAllString(tail, "0")
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
		if err := checkOwnFile("store", fileRoleStore, path); err != nil {
			return nil, err
		}
		key := "file|" + filepath.Clean(path)
		v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
			f, err := store.OpenFile(filepath.Clean(path), store.FileOptions{AtRest: atRest})
			if err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
			if n := f.Undecryptable(); n > 0 {
				caddy.Log().Named("modulus.store").Error("idempotent answers in the store file cannot be decrypted with the configured at_rest_key; "+
					"they are not used (a request with their reference is sent upstream again) and leave the file when they expire",
					zap.String("file", path), zap.Int("answers", n))
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
