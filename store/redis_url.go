package store

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisMode is how a Redis deployment is reached.
type RedisMode int

const (
	// RedisSingle is one server (redis://, rediss://).
	RedisSingle RedisMode = iota
	// RedisCluster is a Redis Cluster reached through a seed list of its
	// nodes (redis-cluster://, rediss-cluster://).
	RedisCluster
	// RedisSentinel is a primary with replicas watched by Sentinel,
	// reached through the sentinels (redis-sentinel://, rediss-sentinel://).
	RedisSentinel
)

func (m RedisMode) String() string {
	switch m {
	case RedisCluster:
		return "cluster"
	case RedisSentinel:
		return "sentinel"
	}
	return "single"
}

// RedisURLForms is the list of accepted forms, for error messages.
const RedisURLForms = "redis://[:password@]host:port/db, redis-cluster://[:password@]host:port,host:port,...[/?tls=true] " +
	"or redis-sentinel://[:password@]host:port,host:port/MASTERNAME[/db] (rediss://, rediss-cluster://, rediss-sentinel:// for TLS; " +
	"each takes ?key_prefix=...)"

// RedisTarget is a parsed Redis URL: where the deployment is and how to
// reach it. Its String never shows the password.
type RedisTarget struct {
	// Mode says which client reaches the deployment.
	Mode RedisMode
	// Addrs are host:port: the server (single), a seed list of nodes
	// (cluster) or the sentinels (sentinel).
	Addrs []string
	// Master is the name the sentinels know the primary by (sentinel only).
	Master string
	// DB is the database number (0 on a cluster, which has no other).
	DB int
	// TLS is set for the rediss forms and ?tls=true.
	TLS bool
	// SentinelAuth sends the password to the sentinels too (?sentinel_auth=true):
	// for sentinels that are protected with the servers' password.
	SentinelAuth bool
	// KeyPrefix (?key_prefix=..., every form) namespaces every key instead
	// of "qrphgate:", so that deployments can share a Redis Cluster (which
	// has no databases to keep them apart); "" means the default.
	KeyPrefix string

	username, password string
	single             *redis.Options // redis:// and rediss://: go-redis' own parse (its query options)
}

// schemes maps each accepted URL scheme to its mode and whether it is TLS.
var schemes = map[string]struct {
	mode RedisMode
	tls  bool
}{
	"redis":           {RedisSingle, false},
	"rediss":          {RedisSingle, true},
	"redis-cluster":   {RedisCluster, false},
	"rediss-cluster":  {RedisCluster, true},
	"redis-sentinel":  {RedisSentinel, false},
	"rediss-sentinel": {RedisSentinel, true},
}

// IsRedisURL reports whether spec names one of the Redis URL schemes (it
// may still be malformed: ParseRedisURL says).
func IsRedisURL(spec string) bool {
	scheme, _, ok := strings.Cut(spec, "://")
	_, known := schemes[scheme]
	return ok && known
}

var errRedisURL = errors.New("store: want " + RedisURLForms)

// ParseRedisURL parses one of the Redis URL forms (RedisURLForms). Its
// errors never repeat the URL or its password.
func ParseRedisURL(raw string) (RedisTarget, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	kind, known := schemes[scheme]
	if !ok || !known {
		return RedisTarget{}, errRedisURL
	}
	raw, prefix, err := cutKeyPrefix(raw)
	if err != nil {
		return RedisTarget{}, err
	}
	if kind.mode == RedisSingle {
		t, err := parseSingleURL(raw, kind.tls)
		t.KeyPrefix = prefix
		return t, err
	}
	rest = strings.TrimPrefix(raw, scheme+"://")
	t := RedisTarget{Mode: kind.mode, TLS: kind.tls, KeyPrefix: prefix}
	// [user:password@]hosts[/path][?query]; the password may hold any
	// character percent-escaped (a raw '@' too), so the host list starts
	// after the last '@' that comes before any '/' or '?'.
	if at := userinfoEnd(rest); at >= 0 {
		var err error
		if t.username, t.password, err = parseUserinfo(rest[:at]); err != nil {
			return RedisTarget{}, err
		}
		rest = rest[at+1:]
	}
	hosts, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts, tail = rest[:i], rest[i:]
	}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := checkHostPort(h)
		if err != nil {
			return RedisTarget{}, err
		}
		t.Addrs = append(t.Addrs, addr)
	}
	path, query, _ := strings.Cut(tail, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return RedisTarget{}, errors.New("store: the Redis URL's query is malformed")
	}
	if err := t.parsePath(strings.TrimPrefix(path, "/")); err != nil {
		return RedisTarget{}, err
	}
	if err := t.parseQuery(q); err != nil {
		return RedisTarget{}, err
	}
	return t, nil
}

// userinfoEnd is the index of the '@' that ends the user-info part of
// what follows "scheme://" (the last '@' before the path or query), or -1.
func userinfoEnd(rest string) int {
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	return strings.LastIndex(authority, "@")
}

func parseSingleURL(raw string, isTLS bool) (RedisTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return RedisTarget{}, errRedisURL
	}
	if db := strings.TrimPrefix(u.Path, "/"); strings.Trim(db, "0123456789") != "" {
		return RedisTarget{}, errors.New("store: the Redis database in the URL path must be a number")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return RedisTarget{}, fmt.Errorf("store: invalid redis URL for %s", RedactURL(raw))
	}
	t := RedisTarget{Mode: RedisSingle, Addrs: []string{opts.Addr}, DB: opts.DB, TLS: isTLS, single: opts}
	t.username, t.password = opts.Username, opts.Password
	return t, nil
}

// keyPrefixChars are the characters a key_prefix may hold: no hash-tag
// braces, nothing a key name would need quoted.
const keyPrefixChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.-"

// cutKeyPrefix takes the key_prefix option (every form has it) out of raw's
// query, so that the rest parses as the form's own.
func cutKeyPrefix(raw string) (string, string, error) {
	base, query, ok := strings.Cut(raw, "?")
	if !ok || !strings.Contains(query, "key_prefix") {
		return raw, "", nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", errors.New("store: the Redis URL's query is malformed")
	}
	vs, ok := q["key_prefix"]
	if !ok {
		return raw, "", nil
	}
	prefix := vs[len(vs)-1]
	if prefix == "" || len(prefix) > 64 || strings.Trim(prefix, keyPrefixChars) != "" {
		return "", "", errors.New("store: the Redis URL option key_prefix must be 1 to 64 letters, digits or :_.-")
	}
	q.Del("key_prefix")
	if len(q) == 0 {
		return base, prefix, nil
	}
	return base + "?" + q.Encode(), prefix, nil
}

func parseUserinfo(s string) (user, password string, err error) {
	u, p, hasPw := strings.Cut(s, ":")
	if user, err = url.PathUnescape(u); err == nil && hasPw {
		password, err = url.PathUnescape(p)
	}
	if err != nil {
		return "", "", errors.New("store: the Redis URL's user or password is not properly percent-escaped")
	}
	return user, password, nil
}

// checkHostPort checks one host:port of a list.
func checkHostPort(hp string) (string, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@ ") {
		return "", errors.New("store: each Redis address must be host:port, separated by commas")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", errors.New("store: each Redis address needs a port between 1 and 65535")
	}
	return net.JoinHostPort(host, port), nil
}

// parsePath reads the path: empty on a cluster, MASTERNAME[/db] for
// Sentinel.
func (t *RedisTarget) parsePath(p string) error {
	p = strings.TrimSuffix(p, "/")
	if t.Mode == RedisCluster {
		if p != "" {
			return errors.New("store: a Redis Cluster URL takes no path (a cluster has only database 0)")
		}
		return nil
	}
	master, db, hasDB := strings.Cut(p, "/")
	if master == "" {
		return errors.New("store: a Redis Sentinel URL names the primary: redis-sentinel://host:port,host:port/MASTERNAME[/db]")
	}
	if m, err := url.PathUnescape(master); err != nil || strings.ContainsAny(m, " \t\r\n") {
		return errors.New("store: the Sentinel master name is malformed")
	} else {
		t.Master = m
	}
	if hasDB {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 || db != strconv.Itoa(n) {
			return errors.New("store: the Redis database in the URL path must be a number")
		}
		t.DB = n
	}
	return nil
}

// parseQuery reads the options of the cluster and sentinel forms; any
// other is an error (a typo must not pass silently).
func (t *RedisTarget) parseQuery(q url.Values) error {
	for k, vs := range q {
		if k != "tls" && (k != "sentinel_auth" || t.Mode != RedisSentinel) {
			return fmt.Errorf("store: unknown Redis URL option %q", k)
		}
		b, err := strconv.ParseBool(vs[len(vs)-1])
		if err != nil {
			return fmt.Errorf("store: the Redis URL option %s must be true or false", k)
		}
		if k == "tls" {
			t.TLS = t.TLS || b
		} else {
			t.SentinelAuth = b
		}
	}
	return nil
}

// String describes the target for logs and metrics, never with the
// password: "redis 127.0.0.1:6379/0", "redis-cluster 10.0.0.1:6379,10.0.0.2:6379",
// "redis-sentinel mymaster@10.0.0.1:26379,10.0.0.2:26379/0".
func (t RedisTarget) String() string {
	switch t.Mode {
	case RedisCluster:
		return "redis-cluster " + strings.Join(t.Addrs, ",")
	case RedisSentinel:
		return fmt.Sprintf("redis-sentinel %s@%s/%d", t.Master, strings.Join(t.Addrs, ","), t.DB)
	}
	return fmt.Sprintf("redis %s/%d", t.Addrs[0], t.DB)
}

// tlsConfig is the TLS configuration of a TLS target: TLS 1.2 or newer, the
// server checked against rootCAs (nil: the system roots) and its own
// address (ServerName is left empty, so each node of a cluster, and the
// primary a sentinel names, is checked against the address it is dialled on).
func (t RedisTarget) tlsConfig(base *tls.Config) *tls.Config {
	if !t.TLS {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		c = base.Clone()
		c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	}
	return c
}

// RedactURL hides the password of a Redis URL (any form) for logs and
// errors.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if _, known := schemes[scheme]; !ok || !known {
		return "redis://[unparseable]"
	}
	// Conservative: a password with a raw '/' or '?' (not percent-escaped)
	// makes a malformed URL, whose user-info still must not show.
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	userinfo := rest[:at]
	if strings.ContainsAny(userinfo, "/?#") {
		return scheme + "://xxxxx@" + rest[at+1:]
	}
	user, _, hasPw := strings.Cut(userinfo, ":")
	if hasPw {
		return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
	}
	return raw
}
