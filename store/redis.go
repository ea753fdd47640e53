package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Redis implements RateBudget (redis_budget.go), Idempotency
// (redis_idem.go) and Dedupe (redis_dedupe.go) on a Redis server, so
// several sidecars share one rate budget, one idempotency cache and one
// de-duplication set; this file holds the connection itself. Every multi-step operation is one Lua script, atomic on
// the server, and the sliding window uses the server's clock (TIME), so
// replicas with skewed clocks still share one window.
//
// It reaches one server, a Redis Cluster or a primary watched by Sentinel
// (see ParseRedisURL); every script touches one slot (see redisKeys).
//
// Every command's outcome feeds a health state (State): the first failure
// to reach the server logs once and tells the RedisObserver, and so does
// the first answer after it.
type Redis struct {
	c       redis.UniversalClient // *redis.Client (single, Sentinel) or *redis.ClusterClient
	target  RedisTarget
	keys    redisKeys
	atRest  *AtRest
	reserve time.Duration
	name    string
	health  *health
	clk     clock.Clock
	stop    chan struct{}
	watched chan struct{}
	closed  sync.Once
	// completer pipelines the answers of CompleteLater.
	completer *completer
}

// RedisOptions tune OpenRedis.
type RedisOptions struct {
	// Prefix namespaces every key (the URL's key_prefix, or "qrphgate:",
	// when empty); it must not contain { or }.
	Prefix string

	// DialTimeout bounds each connection attempt; 2s when zero. A slow
	// Redis must not hold a payment call for long.
	DialTimeout time.Duration

	// ReadTimeout bounds reading each reply; 1s when zero.
	ReadTimeout time.Duration

	// WriteTimeout bounds writing each command; 1s when zero.
	WriteTimeout time.Duration

	// Reservation is how long Dedupe.Add holds a key for an event that is
	// not stored yet; 1m when zero. It must outlast a spool write and stay
	// well under the provider's retry interval (15 minutes), so that a
	// replica dying between the two leaves a key the retry can take.
	Reservation time.Duration

	// AllowDown opens the store even when the server cannot be reached
	// yet: calls fail with ErrUnavailable until it answers. Otherwise
	// OpenRedis fails.
	AllowDown bool

	// PingEvery, when positive, pings the server at that interval so the
	// health state changes without traffic.
	PingEvery time.Duration

	// Logger receives the state transitions; nil means none.
	Logger *zap.Logger

	// Observer hears of every transition, after it is logged; nil: none.
	Observer RedisObserver

	// AtRest seals the payment data the store, and the spools and ledger
	// on it, write (idempotent answers, webhook payloads, ledger entries)
	// when it holds a Sealer; nil or empty: plain.
	AtRest *AtRest

	// RootCAs, for a TLS URL (rediss://, rediss-cluster://,
	// rediss-sentinel:// or ?tls=true), are the certificate authorities
	// the servers' certificates are verified against (a private CA); nil
	// means the system roots. The host name is checked either way.
	RootCAs *x509.CertPool

	// Clock is this process's time for the health state (RedisState.Since,
	// the outage's length), the PingEvery pings and the pacing of rate
	// windows' retries while the server is down; clock.Real() when nil.
	// What Redis decides (a sliding window, expiries) stays on the
	// server's clock.
	Clock clock.Clock
}

// OpenRedis connects to the deployment rawURL names (see ParseRedisURL):
// redis://[user:password@]host:port/db, a Redis Cluster through
// redis-cluster://[user:password@]host:port,host:port,... or a primary
// watched by Sentinel through
// redis-sentinel://[user:password@]host:port,host:port/MASTERNAME[/db];
// rediss, rediss-cluster and rediss-sentinel (or ?tls=true) speak TLS 1.2
// or newer, the servers verified against the system roots or o.RootCAs.
// The password belongs in the URL only after placeholder resolution;
// errors never repeat it.
func OpenRedis(ctx context.Context, rawURL string, o RedisOptions) (*Redis, error) {
	t, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	if t.single != nil && t.single.TLSConfig != nil && t.single.TLSConfig.InsecureSkipVerify {
		// go-redis honours ?skip_verify=true; an unverified server could
		// read every key and idempotent answer, so a private CA belongs in
		// the trust store (SSL_CERT_FILE) instead.
		return nil, fmt.Errorf("store: %s asks to skip TLS verification (skip_verify); trust the server's CA instead (SSL_CERT_FILE or the system store)", RedactURL(rawURL))
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = t.KeyPrefix
	}
	if prefix == "" {
		prefix = "qrphgate:"
	}
	keys, err := newRedisKeys(prefix, t.Mode)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	r := &Redis{
		c: t.newClient(o), target: t, keys: keys, atRest: o.AtRest, reserve: orDefault(o.Reservation, time.Minute),
		name: t.String(), clk: o.Clock, stop: make(chan struct{}), watched: make(chan struct{}),
	}
	r.health = newHealth(r.name, o.Logger, o.Observer, o.Clock)
	r.c.AddHook(healthHook{r.health})
	r.completer = newCompleter(r.c)
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		cc.AddHook(reloadHook{cc})
	}
	err = r.Ping(ctx)
	if err == nil {
		err = r.checkServer(ctx, o.Logger)
	}
	if err != nil && (!o.AllowDown || !errors.Is(err, ErrUnavailable)) {
		r.completer.close()
		_ = r.c.Close()
		return nil, err
	}
	if o.PingEvery > 0 {
		go r.watch(o.PingEvery)
	} else {
		close(r.watched)
	}
	return r, nil
}

// newClient builds the go-redis client for t. Every mode fails fast rather
// than queue behind a dead server; callers apply the documented failure
// mode. One dial attempt per command, and the client's dial breaker kept
// out of the way: it trips after PoolSize failed dials in a row and then
// answers with the remembered error, even for a while after the server is
// back (seen as a flap right after recovery). A refused dial costs
// microseconds, so recovery is seen by the first command after it.
// Connections are opened only on demand.
//
// No command is retried on one server or under Sentinel: a script whose
// reply was lost may already have run. A Cluster client follows MOVED and
// ASK (resharding) and retries a command a few times when its node fails
// or is busy (TRYAGAIN, CLUSTERDOWN, a dropped connection), which is what
// carries it across a failover; so every script is safe to run twice (see
// takeScript, beginScript, redisPutScript) or its second run only delays
// (a spool claim's events wait for their lease to end).
func (t RedisTarget) newClient(o RedisOptions) redis.UniversalClient {
	dial, read, write := orDefault(o.DialTimeout, 2*time.Second), orDefault(o.ReadTimeout, time.Second), orDefault(o.WriteTimeout, time.Second)
	const poolSize = 1 << 16
	switch t.Mode {
	case RedisCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: t.Addrs, Username: t.username, Password: t.password, TLSConfig: t.tlsConfig(rootCAs(o.RootCAs)),
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			MaxRetries: -1, MaxRedirects: 3, DialerRetries: 1, PoolSize: poolSize,
		})
	case RedisSentinel:
		fo := &redis.FailoverOptions{
			MasterName: t.Master, SentinelAddrs: t.Addrs, Username: t.username, Password: t.password, DB: t.DB,
			TLSConfig:   t.tlsConfig(rootCAs(o.RootCAs)),
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			MaxRetries: -1, DialerRetries: 1, PoolSize: poolSize,
		}
		if t.SentinelAuth {
			fo.SentinelUsername, fo.SentinelPassword = t.username, t.password
		}
		return redis.NewFailoverClient(fo)
	}
	opts := *t.single
	if opts.TLSConfig != nil && o.RootCAs != nil {
		opts.TLSConfig = opts.TLSConfig.Clone()
		opts.TLSConfig.RootCAs = o.RootCAs
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dial, read, write
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.PoolSize = max(opts.PoolSize, poolSize)
	return redis.NewClient(&opts)
}

func rootCAs(pool *x509.CertPool) *tls.Config {
	if pool == nil {
		return nil
	}
	return &tls.Config{RootCAs: pool}
}

// Name identifies the deployment for logs and metrics (RedisTarget.String):
// mode, addresses and database, never the password.
func (r *Redis) Name() string { return r.name }

// State reports whether the server was reachable at the last command.
func (r *Redis) State() RedisState { return r.health.state() }

// Mode is how the deployment is reached.
func (r *Redis) Mode() RedisMode { return r.target.Mode }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Ping checks the connection.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close stops the pinger, writes the answers CompleteLater queued, and
// releases the connection pool.
func (r *Redis) Close() error {
	err := ErrClosed
	r.closed.Do(func() {
		close(r.stop)
		<-r.watched
		r.completer.close() // the answers queued so far are written first
		err = r.c.Close()
	})
	if err == ErrClosed {
		return nil
	}
	return err
}

// unavailable wraps a Redis failure as ErrUnavailable (and the failure
// itself, for errors.As). go-redis errors carry no credentials, but keep
// the text short anyway.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// callID names one call of a script, so that a second run of it (a
// Cluster client's retry) can tell it from another call.
func callID() string {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	return hex.EncodeToString(id)
}

// String describes the store for logs, without the password.
func (r *Redis) String() string {
	return fmt.Sprintf("%s (prefix %s)", r.name, strings.TrimSuffix(r.keys.prefix, ":"))
}
