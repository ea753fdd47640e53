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

// Redis implements RateBudget, Idempotency and Dedupe on a Redis server, so
// several sidecars share one rate budget, one idempotency cache and one
// de-duplication set. Every multi-step operation is one Lua script, atomic on
// the server, and the sliding window uses the server's clock (TIME), so
// replicas with skewed clocks still share one window.
//
// It reaches one server, a Redis Cluster or a primary watched by Sentinel
// (see ParseRedisURL); every script touches one slot (see redisKeys).
//
// Every command's outcome feeds a health state (State): the first failure
// to reach the server logs once and calls OnStateChange, and so does the
// first answer after it.
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
}

// RedisOptions tune OpenRedis.
type RedisOptions struct {
	// Prefix namespaces every key (the URL's key_prefix, or "qrphgate:",
	// when empty); it must not contain { or }.
	Prefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound each operation; a slow
	// Redis must not hold a payment call for long. Zero means 2s, 1s, 1s.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
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
	// OnStateChange is called on every transition with the store's Name
	// (up true: reachable again), after it is logged.
	OnStateChange func(name string, up bool)
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
	r.health = newHealth(r.name, o.Logger, o.OnStateChange, o.Clock)
	r.c.AddHook(healthHook{r.health})
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		cc.AddHook(reloadHook{cc})
	}
	err = r.Ping(ctx)
	if err == nil {
		err = r.checkServer(ctx, o.Logger)
	}
	if err != nil && (!o.AllowDown || !errors.Is(err, ErrUnavailable)) {
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

// Close stops the pinger and releases the connection pool.
func (r *Redis) Close() error {
	err := ErrClosed
	r.closed.Do(func() {
		close(r.stop)
		<-r.watched
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

// takeScript admits one call if the sliding window has room. Scores are
// server microseconds; entries at or before now-window have left. ARGV[3]
// names the call: run again (a Cluster client's retry), the script finds
// it admitted rather than take a second slot.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return {1, n, 0} end
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, n + 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return {0, n, tonumber(oldest[2]) + window - now}
`)

var usageScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
`)

// Take implements RateBudget.
func (r *Redis) Take(ctx context.Context, key string, limit int, window time.Duration) (Grant, error) {
	res, err := takeScript.Run(ctx, r.c, []string{r.keys.budget(key)}, limit, window.Microseconds(), callID()).Int64Slice()
	if err != nil {
		return Grant{}, unavailable("take", err)
	}
	if len(res) != 3 {
		return Grant{}, unavailable("take", fmt.Errorf("unexpected reply of %d values", len(res)))
	}
	return Grant{OK: res[0] == 1, Used: int(res[1]), RetryAfter: time.Duration(res[2]) * time.Microsecond}, nil
}

// Usage implements RateBudget.
func (r *Redis) Usage(ctx context.Context, key string, window time.Duration) (int, error) {
	n, err := usageScript.Run(ctx, r.c, []string{r.keys.budget(key)}, window.Microseconds()).Int()
	if err != nil {
		return 0, unavailable("usage", err)
	}
	return n, nil
}

// An idempotency key is a hash {s: "claimed"|"completed", fp, v, tok}.
// tok names the Begin call that claimed it: run again (a Cluster client's
// retry), the script finds its own claim and hands it back rather than
// have the caller wait on itself until the lease ends. Earlier releases
// wrote no tok and ignore it.
var beginScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 's', 'fp', 'v', 'tok')
if cur[1] == 'claimed' and cur[4] == ARGV[3] then return {'owner', ARGV[1], false} end
if cur[1] then return {cur[1], cur[2], cur[3]} end
redis.call('HSET', KEYS[1], 's', 'claimed', 'fp', ARGV[1], 'tok', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'owner', ARGV[1], false}
`)

var completeScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 's', 'fp')
if cur[1] == 'completed' then return 0 end
if cur[1] and cur[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'completed', 'fp', ARGV[1], 'v', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

var releaseScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 's', 'fp')
if cur[1] == 'claimed' and cur[2] == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`)

func claimFromReply(reply any) (Claim, error) {
	vals, ok := reply.([]any)
	if !ok || len(vals) != 3 {
		return Claim{}, fmt.Errorf("unexpected reply %T", reply)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	c := Claim{Fingerprint: str(vals[1])}
	switch str(vals[0]) {
	case "owner":
		c.State = Claimed
	case "claimed":
		c.State = InFlight
	case "completed":
		c.State = Completed
		c.Value = []byte(str(vals[2]))
	case "":
		return Claim{}, nil
	default:
		return Claim{}, fmt.Errorf("unexpected state %q", str(vals[0]))
	}
	return c, nil
}

// Begin implements Idempotency. With at-rest encryption, a key that was
// free under its name may still be live under the name it had before the
// keys changed (plain, or another key's blind index; see redis_idem.go):
// for a while after a change Begin looks there too, and hands back what
// it finds rather than make a second call for the same reference.
func (r *Redis) Begin(ctx context.Context, key, fingerprint string, lease time.Duration) (Claim, error) {
	sl := r.atRest.Sealer()
	name := r.idemName(sl, key)
	reply, err := beginScript.Run(ctx, r.c, []string{name}, fingerprint, lease.Milliseconds(), callID()).Result()
	if err != nil {
		return Claim{}, unavailable("begin", err)
	}
	c, err := claimFromReply(reply)
	if err != nil {
		return Claim{}, unavailable("begin", err)
	}
	if c.State == Claimed && r.atRest.changedWithin(idemLegacyWindow) {
		if old, err := r.legacyClaim(ctx, sl, key); err != nil || old.State != 0 {
			_ = releaseScript.Run(ctx, r.c, []string{name}, fingerprint).Err()
			return old, err
		}
	}
	if c.State == Completed {
		return r.openClaim(sl, name, c)
	}
	return c, nil
}

// Complete implements Idempotency.
func (r *Redis) Complete(ctx context.Context, key, fingerprint string, value []byte, ttl time.Duration) error {
	sl := r.atRest.Sealer()
	name := r.idemName(sl, key)
	if sl != nil {
		value = sl.Seal(idemAAD(name), value)
	}
	if err := completeScript.Run(ctx, r.c, []string{name}, fingerprint, value, ttl.Milliseconds()).Err(); err != nil {
		return unavailable("complete", err)
	}
	return nil
}

// Release implements Idempotency.
func (r *Redis) Release(ctx context.Context, key, fingerprint string) error {
	if err := releaseScript.Run(ctx, r.c, []string{r.idemName(r.atRest.Sealer(), key)}, fingerprint).Err(); err != nil {
		return unavailable("release", err)
	}
	return nil
}

// callID names one call of a script, so that a second run of it (a
// Cluster client's retry) can tell it from another call.
func callID() string {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	return hex.EncodeToString(id)
}

// Get implements Idempotency.
func (r *Redis) Get(ctx context.Context, key string) (Claim, error) {
	sl := r.atRest.Sealer()
	name := r.idemName(sl, key)
	c, err := r.getClaim(ctx, name)
	if err != nil {
		return Claim{}, err
	}
	if c.State == 0 && r.atRest.changedWithin(idemLegacyWindow) {
		return r.legacyClaim(ctx, sl, key)
	}
	return r.openClaim(sl, name, c)
}

// getClaim reads the idempotency record name as it is.
func (r *Redis) getClaim(ctx context.Context, name string) (Claim, error) {
	vals, err := r.c.HMGet(ctx, name, "s", "fp", "v").Result()
	if err != nil {
		return Claim{}, unavailable("get", err)
	}
	if s, _ := vals[0].(string); s == "" {
		return Claim{}, nil
	}
	c, err := claimFromReply(vals)
	if err != nil {
		return Claim{}, unavailable("get", err)
	}
	return c, nil
}

// A de-duplication key holds "r" while reserved (Add) and "s" once its
// event is stored (Confirm, or a Redis spool's Put); any other value is
// taken as seen.
var reserveScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == 'r' then return 2 end
if v then return 0 end
redis.call('SET', KEYS[1], 'r', 'PX', ARGV[1])
return 1
`)

// Add implements Dedupe: it reserves key for at most the Reservation
// option (ttl if shorter). Confirm, or a RedisSpool Put of the event
// carrying the key, makes it seen for the whole dedupe window. A
// reservation held by someone else is ErrPending.
func (r *Redis) Add(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return r.reserveMark(ctx, r.keys.dedupe(key), ttl)
}

// reserveMark is Add on the mark named k (the store's or a spool's).
func (r *Redis) reserveMark(ctx context.Context, k string, ttl time.Duration) (bool, error) {
	res, err := reserveScript.Run(ctx, r.c, []string{k}, min(ttl, r.reserve).Milliseconds()).Int()
	if err != nil {
		return false, unavailable("add", err)
	}
	switch res {
	case 1:
		return true, nil
	case 2:
		return false, ErrPending
	}
	return false, nil
}

// Confirm marks key as seen for ttl: its event is durably stored. It
// replaces a reservation (or its absence, if the reservation lapsed).
func (r *Redis) Confirm(ctx context.Context, key string, ttl time.Duration) error {
	return r.confirmMark(ctx, r.c, r.keys.dedupe(key), ttl)
}

func (r *Redis) confirmMark(ctx context.Context, c redis.Cmdable, k string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if err := c.Set(ctx, k, "s", ttl).Err(); err != nil {
		return unavailable("confirm", err)
	}
	return nil
}

// Contains implements Dedupe.
func (r *Redis) Contains(ctx context.Context, key string) (bool, error) {
	return r.containsMark(ctx, r.keys.dedupe(key))
}

func (r *Redis) containsMark(ctx context.Context, k string) (bool, error) {
	n, err := r.c.Exists(ctx, k).Result()
	if err != nil {
		return false, unavailable("contains", err)
	}
	return n == 1, nil
}

// Remove implements Dedupe.
func (r *Redis) Remove(ctx context.Context, key string) error {
	return r.removeMark(ctx, r.keys.dedupe(key))
}

func (r *Redis) removeMark(ctx context.Context, k string) error {
	if err := r.c.Del(ctx, k).Err(); err != nil {
		return unavailable("remove", err)
	}
	return nil
}

// String describes the store for logs, without the password.
func (r *Redis) String() string {
	return fmt.Sprintf("%s (prefix %s)", r.name, strings.TrimSuffix(r.keys.prefix, ":"))
}

// Interface guards.
var (
	_ RateBudget  = (*Redis)(nil)
	_ Idempotency = (*Redis)(nil)
	_ Dedupe      = (*Redis)(nil)
)
