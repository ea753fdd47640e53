package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/store"
)

// webhookWorkers holds one worker per spool: the open spool and the
// goroutine delivering from it. A worker lives in the pool, not in a
// handler, so that `caddy reload` neither stops deliveries nor opens the
// spool file twice (bbolt locks it); it is destroyed when the last handler
// using its spool is cleaned up.
var webhookWorkers = caddy.NewUsagePool()

// spoolOpener opens a spool given by URL. File paths need none; other back
// ends (Redis) register theirs by scheme from their own init.
type spoolOpener func(spec string, logger *zap.Logger) (store.Spool, error)

var (
	spoolOpenersMu sync.Mutex
	spoolOpeners   = map[string]spoolOpener{}
)

func init() {
	for _, scheme := range []string{"redis", "rediss", "redis-cluster", "rediss-cluster", "redis-sentinel", "rediss-sentinel"} {
		registerSpoolOpener(scheme, openRedisSpool)
	}
}

// redisSpoolName is the queue's name on its server: every replica naming
// the same server and database shares it.
const redisSpoolName = "webhooks"

// redisSharedPoll is how often a worker on a shared spool looks for events
// other replicas acknowledged (or handed back); its own wake it at once.
const redisSharedPoll = time.Second

// redisSpool is a Redis spool on a pooled connection, released on Close.
type redisSpool struct {
	*store.RedisSpool
	release func() error
}

func (s redisSpool) Close() error { return errors.Join(s.RedisSpool.Close(), s.release()) }

// openRedisSpool opens the spool replicas share on a Redis server (spec has
// its placeholders resolved).
func openRedisSpool(spec string, logger *zap.Logger) (store.Spool, error) {
	if err := checkRedisSpec("spool", spec, webhookSpoolSyntax); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, release, err := acquireRedis(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s, err := store.NewRedisSpool(ctx, r, store.RedisSpoolOptions{Name: redisSpoolName, Logger: logger})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("spool: %w", err), release())
	}
	return redisSpool{RedisSpool: s, release: release}, nil
}

// registerSpoolOpener makes a URL scheme usable in the spool option.
func registerSpoolOpener(scheme string, open spoolOpener) {
	spoolOpenersMu.Lock()
	defer spoolOpenersMu.Unlock()
	spoolOpeners[scheme] = open
}

func openSpool(spec string, logger *zap.Logger) (store.Spool, error) {
	if !strings.Contains(spec, "://") {
		s, err := store.OpenBolt(spec, store.BoltOptions{AtRest: atRest})
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		return s, nil
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("spool: not a file path or a URL")
	}
	spoolOpenersMu.Lock()
	open := spoolOpeners[u.Scheme]
	spoolOpenersMu.Unlock()
	if open == nil {
		return nil, fmt.Errorf("spool: %s:// spools are not available in this build (use a file path)", u.Scheme)
	}
	return open(spec, logger)
}

// webhookWorker is a spool and its delivery worker, shared by every
// handler (across reloads) that names the same spool.
type webhookWorker struct {
	name      string // the spool as configured, for status and listings
	spool     store.Spool
	dedupe    store.Dedupe
	deliverer *inbound.Deliverer
	cancel    context.CancelFunc
	done      chan struct{}
	unstatus  func()
	unreseal  func() // stops the spool's re-encryption passes

	mu     sync.Mutex
	regs   []*webhookReg // live handlers' delivery settings, oldest first
	active *webhookReg   // the settings in use: the running config's
}

// webhookReg is one handler's claim on a worker's delivery settings.
type webhookReg struct {
	config      <-chan struct{} // identifies the config the handler belongs to
	fingerprint string
	delivery    inbound.DeliveryConfig
	started     bool // its config started and has not stopped: its settings may be used
}

// acquireWebhookWorker returns the worker for spec, starting it (opening
// the spool) if no handler uses it yet, and the pool key to release it by.
// clk is a new worker's clock (nil: the real clock; tests pass a fake).
func acquireWebhookWorker(spec string, logger *zap.Logger, clk clock.Clock) (*webhookWorker, string, error) {
	key := "spool:" + spec
	v, _, err := webhookWorkers.LoadOrNew(key, func() (caddy.Destructor, error) {
		sp, err := openSpool(spec, logger)
		if err != nil {
			return nil, err
		}
		// A spool that is also a Dedupe (the file and Redis spools)
		// keeps "seen" across restarts and never ahead of the events
		// themselves.
		dd, ok := sp.(store.Dedupe)
		if !ok {
			dd = store.NewMemory(nil)
		}
		// Other replicas add to (and hand back into) a shared spool
		// without waking this worker: it polls.
		var poll time.Duration
		if _, shared := sp.(redisSpool); shared {
			poll = redisSharedPoll
		}
		ctx, cancel := context.WithCancel(context.Background())
		name := redactSpool(spec)
		w := &webhookWorker{
			name: name, spool: sp, dedupe: dd, cancel: cancel, done: make(chan struct{}),
			deliverer: inbound.NewDeliverer(sp, inbound.DelivererOptions{Logger: logger, Observer: webhookMetrics{}, Poll: poll, Clock: clk, Name: name}),
		}
		var purged sync.WaitGroup
		purged.Add(1)
		go func() {
			defer purged.Done()
			w.deliverer.RunPurge(ctx, historyPurgeEvery)
		}()
		go func() {
			defer close(w.done)
			w.deliverer.Run(ctx)
			purged.Wait()
		}()
		w.unreseal = func() {}
		if r, ok := spoolResealer(sp); ok {
			w.unreseal = startReseal("spool", name, r, logger)
		}
		w.unstatus = status.register("inbound", w.name, w.status)
		return w, nil
	})
	if err != nil {
		return nil, "", err
	}
	return v.(*webhookWorker), key, nil
}

// redactSpool hides credentials in a spool URL.
func redactSpool(spec string) string {
	if u, err := url.Parse(spec); err == nil && u.User != nil {
		return u.Redacted()
	}
	return spec
}

// register records a handler's delivery settings without using them: they
// take effect through activate and retire, once the handler's config has
// started, so a config that Caddy refuses (a later module fails to
// provision, or another app fails to start) never delivers a single event
// with its settings. Two handlers of one config must agree: a spool
// delivers to one place.
func (w *webhookWorker) register(config <-chan struct{}, fingerprint string, dc inbound.DeliveryConfig) (*webhookReg, error) {
	if err := inbound.CheckDeliveryConfig(dc); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.regs {
		if r.config == config && r.fingerprint != fingerprint {
			return nil, fmt.Errorf("spool %s is named by two modulus_webhook handlers of this config with different delivery settings "+
				"(forward_to, forward_timeout, redeliver_for, retry_backoff, sign_secret, delivered_retention or dead_letter_retention); a spool delivers to one place: give each handler its own spool", w.name)
		}
	}
	r := &webhookReg{config: config, fingerprint: fingerprint, delivery: dc}
	w.regs = append(w.regs, r)
	return r, nil
}

// activate records that r's config started its modulus app (OnStart).
// Caddy starts a config's apps one by one and in no set order, and stops
// them again when a later one fails (a listener it cannot bind), so this is
// not yet proof that the config runs. r's settings therefore take effect at
// once only when no running config's settings are in use (the first config
// on this spool) or takeOver is set (a handler with no config lifecycle);
// otherwise they take over when the config in use stops (retire), which
// Caddy does only after every app of the new config started. A
// registration already dropped (its config was refused and cleaned up) is
// ignored.
func (w *webhookWorker) activate(r *webhookReg, takeOver bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.regs, r) {
		return
	}
	r.started = true
	if takeOver || w.active == nil || !w.active.started {
		w.useLocked(r)
	}
}

// retire records that r's config stopped (OnStop): replaced by a reload
// that started, refused after its modulus app started, or at exit. When
// its settings are in use, the newest other started registration's take
// over (the config that replaced it); a refused config's settings were
// never in use while another's were, so the running settings stay. With no
// other, r's stay in use until its handlers are cleaned up.
func (w *webhookWorker) retire(r *webhookReg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r.started = false
	if w.active == r {
		w.handOverLocked()
	}
}

// unregister drops a handler's settings (its config is cleaned up). A
// config that never ran leaves the settings in use alone; when the
// settings in use go, the newest remaining started registration's take
// over.
func (w *webhookWorker) unregister(r *webhookReg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i := slices.Index(w.regs, r); i >= 0 {
		w.regs = slices.Delete(w.regs, i, i+1)
	}
	if w.active == r && !w.handOverLocked() {
		w.active = nil
	}
}

// handOverLocked puts the newest started registration other than the one
// in use in its place, and reports whether there was one.
func (w *webhookWorker) handOverLocked() bool {
	for i := len(w.regs) - 1; i >= 0; i-- {
		if r := w.regs[i]; r.started && r != w.active {
			w.useLocked(r)
			return true
		}
	}
	return false
}

// useLocked puts r's settings in use.
func (w *webhookWorker) useLocked(r *webhookReg) {
	w.active = r
	_ = w.deliverer.Configure(r.delivery) // checked by register
}

// Destruct implements caddy.Destructor: it stops the worker (attempts under
// way are cancelled and retried later) and closes the spool.
func (w *webhookWorker) Destruct() error {
	w.unstatus()
	w.unreseal()
	w.cancel()
	<-w.done
	return w.spool.Close()
}

// historyPurgeEvery is how often a worker purges what the history's
// retention no longer keeps.
const historyPurgeEvery = 10 * time.Minute

// spoolResealer is the spool's re-encryption walker (the file and Redis
// spools have one).
func spoolResealer(sp store.Spool) (store.Resealer, bool) {
	if rs, ok := sp.(redisSpool); ok {
		return rs.RedisSpool, true
	}
	r, ok := sp.(store.Resealer)
	return r, ok
}

// webhookStatus is a worker's entry under "inbound" in /modulus/status.
type webhookStatus struct {
	inbound.DeliveryStatus
	// WritesPerCommit is the file spool's group-commit factor: writes
	// carried by each fsync since the spool was opened.
	WritesPerCommit float64 `json:"writes_per_commit,omitempty"`
	// SpoolCommits and SpoolWrites are the file spool's counts behind
	// WritesPerCommit (commits, each one fsync, and the writes they
	// carried), so that a load test can take the factor of one interval.
	SpoolCommits uint64 `json:"spool_commits,omitempty"`
	SpoolWrites  uint64 `json:"spool_writes,omitempty"`
	Error        string `json:"error,omitempty"`
}

func (w *webhookWorker) status() any {
	st, err := w.deliverer.Status(context.Background())
	out := webhookStatus{DeliveryStatus: st}
	if err != nil {
		out.Error = err.Error()
	}
	if b, ok := w.spool.(*store.BoltSpool); ok {
		if commits, writes := b.CommitStats(); commits > 0 {
			out.WritesPerCommit = float64(writes) / float64(commits)
			out.SpoolCommits, out.SpoolWrites = commits, writes
		}
	}
	return out
}

// liveWebhookWorkers returns the running workers, by name.
func liveWebhookWorkers() []*webhookWorker {
	var ws []*webhookWorker
	webhookWorkers.Range(func(_, v any) bool {
		ws = append(ws, v.(*webhookWorker))
		return true
	})
	sort.Slice(ws, func(i, j int) bool { return ws[i].name < ws[j].name })
	return ws
}

// Interface guard.
var _ caddy.Destructor = (*webhookWorker)(nil)
