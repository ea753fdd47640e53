package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// RedisState is what a Redis back end last saw of its server.
type RedisState struct {
	// Up is false from the first failed command (or dial) until the next
	// one that gets an answer.
	Up bool `json:"up"`
	// Since is when the state last changed (or the store was opened).
	Since time.Time `json:"since"`
	// LastError is the failure that took the server down; "" while up.
	LastError string `json:"last_error,omitempty"`
	// Transitions counts the changes of state since the store was opened.
	Transitions int `json:"transitions"`
	// RoundTrips counts the commands and pipelines sent since the store
	// was opened (a pipeline of several commands is one round trip), for
	// load tests: a create-QR call costs one (see BeginTake).
	RoundTrips uint64 `json:"round_trips"`
}

// RedisObserver hears of a Redis store's changes of state (metrics); the
// store logs them itself.
type RedisObserver interface {
	// StateChanged reports a transition of the store named name (its
	// Name): up is true when it is reachable again.
	StateChanged(name string, up bool)
}

// health follows every command's outcome (a go-redis hook) and reports each
// change of state once: the log line and the observer's call come on the
// transition, never per request.
type health struct {
	name string
	log  *zap.Logger
	obs  RedisObserver // nil: none
	clk  clock.Clock

	up         atomic.Bool // fast path: most observations change nothing
	roundTrips atomic.Uint64
	mu         sync.Mutex
	st         RedisState
}

func newHealth(name string, log *zap.Logger, obs RedisObserver, clk clock.Clock) *health {
	h := &health{name: name, log: log, obs: obs, clk: clk, st: RedisState{Up: true, Since: clk.Now()}}
	h.up.Store(true)
	return h
}

// observe records the outcome of one command (what names it).
func (h *health) observe(err error, what string) {
	switch {
	case err == nil || !isOutage(err):
		if errors.Is(err, context.Canceled) {
			return // the caller left; that says nothing about the server
		}
		if !h.up.Load() {
			h.set(true, nil, what)
		}
	default:
		if h.up.Load() {
			h.set(false, err, what)
		}
	}
}

func (h *health) set(up bool, err error, what string) {
	h.mu.Lock()
	if h.st.Up == up {
		h.mu.Unlock()
		return
	}
	now := h.clk.Now()
	downFor := now.Sub(h.st.Since)
	h.st.Up, h.st.Since = up, now
	h.st.Transitions++
	h.st.LastError = ""
	if err != nil {
		h.st.LastError = err.Error()
	}
	h.up.Store(up)
	h.mu.Unlock()
	if up {
		h.log.Warn("store reachable again", zap.String("store", h.name), zap.Duration("down_for", downFor), zap.String("command", what))
	} else {
		h.log.Error("store unreachable: outbound calls get 503 store_unavailable, webhooks follow the documented failure mode until it returns",
			zap.String("store", h.name), zap.Error(err), zap.String("command", what))
	}
	if h.obs != nil {
		h.obs.StateChanged(h.name, up)
	}
}

func (h *health) state() RedisState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	st.RoundTrips = h.roundTrips.Load()
	return st
}

// isOutage tells a server that cannot be reached (or cannot serve: it is
// loading its data, or is a replica that lost its primary) from an answer,
// including an error answer such as NOSCRIPT, which proves it is there.
func isOutage(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

// isDialError reports a failure to connect: the command was never sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// healthHook feeds every dial and command result to health.
type healthHook struct{ h *health }

func (k healthHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			k.h.observe(err, "dial")
		}
		return c, err
	}
}

func (k healthHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		k.h.roundTrips.Add(1)
		err := next(ctx, cmd)
		k.h.observe(err, cmd.Name())
		return err
	}
}

func (k healthHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		k.h.roundTrips.Add(1)
		err := next(ctx, cmds)
		if err == nil {
			for _, c := range cmds {
				if c.Err() != nil && isOutage(c.Err()) {
					err = c.Err()
					break
				}
			}
		}
		k.h.observe(err, "pipeline")
		return err
	}
}

// watch pings the server every interval (on the store's clock), so the
// state (and its metric) follows the server even when no request touches
// it.
func (r *Redis) watch(every time.Duration) {
	defer close(r.watched)
	for {
		t := r.clk.NewTimer(every)
		select {
		case <-r.stop:
			t.Stop()
			return
		case <-t.C():
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_ = r.c.Ping(ctx).Err() // the hook records the outcome
			cancel()
		}
	}
}

// go-redis prints every failed dial to stderr, several lines per request
// while the server is down. The health state reports an outage once
// instead; the library's own lines go to SetRedisLogger's logger at debug
// level (nowhere by default).
var redisLibLog atomic.Pointer[zap.Logger]

func init() {
	redisLibLog.Store(zap.NewNop())
	redis.SetLogger(redisLibLogger{})
}

// SetRedisLogger sends the Redis client library's own messages to l, at
// debug level.
func SetRedisLogger(l *zap.Logger) {
	if l != nil {
		redisLibLog.Store(l)
	}
}

type redisLibLogger struct{}

func (redisLibLogger) Printf(_ context.Context, format string, v ...any) {
	if l := redisLibLog.Load(); l.Core().Enabled(zap.DebugLevel) {
		l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}
