package caddymodule

import (
	"errors"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the process-wide "modulus" app. It holds what covers every
// qrphgate handler of the process (the global `modulus` options block of
// the Caddyfile), and it is how a handler's settings take effect only when
// the config that carries them starts: Caddy starts apps only after every
// module of a config has provisioned, so a config that Caddy refuses (a
// later handler fails to provision) never runs its OnStart functions.
//
// Handlers load it with modulusApp; it is created with its defaults when
// the config does not name it.
type App struct {
	// Ledger is where the payments ledger lives: memory (the default),
	// file:///absolute/path (kept across restarts) or a Redis URL shared by
	// the replicas that name it: redis://host:port/db (one server),
	// redis-cluster://host:port,host:port,... (a Redis Cluster) or
	// redis-sentinel://host:port,host:port/MASTERNAME[/db] (Sentinel), with
	// rediss://, rediss-cluster://, rediss-sentinel:// for TLS: the forms
	// modulus_api's store takes. A Redis password must be an {env.*} or
	// {file.*} placeholder.
	Ledger string `json:"ledger,omitempty"`

	// LedgerRetention is how long a transaction is kept, counted from its
	// creation; 90 days by default, at least 1h.
	LedgerRetention caddy.Duration `json:"ledger_retention,omitempty"`

	// ExpiryGrace is how long after its expiresAt a QR with no result
	// becomes expired; 1h by default, 0 expires it at expiresAt.
	ExpiryGrace *caddy.Duration `json:"expiry_grace,omitempty"`

	// ExpiryEvents is on to send the app a QRPH_EXPIRED event for every QR
	// that expires, through modulus_webhook's spool; off by default.
	ExpiryEvents string `json:"expiry_events,omitempty"`

	// AtRestKeys encrypt, at rest, the payment data qrphgate writes to
	// disk or Redis (webhook events and dead letters, idempotent answers,
	// the ledger) with AES-256-GCM; each is a {env.NAME} or {file.PATH}
	// placeholder for 32 bytes. The first encrypts, every one decrypts:
	// put a new key first to rotate, and a background pass re-encrypts
	// what the others sealed. Unset: stored in plain text.
	AtRestKeys []string `json:"at_rest_keys,omitempty"`

	// AtRestKeyEncoding says how each at-rest key string becomes 32
	// bytes: utf8 (default), base64, base64url or hex.
	AtRestKeyEncoding string `json:"at_rest_key_encoding,omitempty"`

	// AuditLog is the audit trail's file: append-only JSON lines, each
	// carrying the SHA-256 of the line before, for every QR created,
	// webhook received, delivery, dead letter, replay and purge of every
	// handler of the process. An absolute path; off when unset.
	AuditLog string `json:"audit_log,omitempty"`

	logger   *zap.Logger
	hooks    *lifecycle
	ledger   *appLedger
	audit    proxy.Auditor
	auditKey string // the pool key of the trail this app holds
}

// lifecycle holds what runs when the config starts and stops.
type lifecycle struct {
	mu      sync.Mutex
	onStart []func()
	onStop  []func()
	started bool
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "modulus",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets up the app; it applies the options' rules as the
// handlers do (see rules.go).
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.hooks = new(lifecycle)
	if err := checkRules(appRules, a); err != nil {
		return err
	}
	atRestMetricsOnce.Do(initAtRestMetrics)
	if err := a.provisionAtRest(); err != nil {
		return err
	}
	if err := a.provisionAudit(); err != nil {
		return err
	}
	return a.provisionLedger(ctx)
}

// Cleanup releases the app's hold on shared state; it tolerates a
// Provision that failed half-way.
func (a *App) Cleanup() error { return errors.Join(a.releaseLedger(), a.releaseAudit()) }

// OnStart registers f to run when this config starts, after every module
// of it provisioned and before it serves; f never runs when the config is
// refused. Handlers use it for settings that must not touch shared state
// (a delivery worker, a background job) until then.
func (a *App) OnStart(f func()) {
	h := a.hooks
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		f() // registered late (a module loaded after Start): run now
		return
	}
	h.onStart = append(h.onStart, f)
	h.mu.Unlock()
}

// OnStop registers f to run when this config stops (replaced by a reload,
// or at exit), before the next config's Start.
func (a *App) OnStop(f func()) {
	h := a.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onStop = append(h.onStop, f)
}

// Start runs the OnStart functions in the order they were registered.
func (a *App) Start() error {
	h := a.hooks
	h.mu.Lock()
	fs := h.onStart
	h.onStart, h.started = nil, true
	h.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return nil
}

// Stop runs the OnStop functions, last registered first.
func (a *App) Stop() error {
	h := a.hooks
	h.mu.Lock()
	fs := h.onStop
	h.onStop = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	return nil
}

// modulusApp returns the config's modulus app, or nil when ctx belongs to
// no config (a module provisioned on its own, as unit tests do): then
// settings take effect at once.
func modulusApp(ctx caddy.Context) (*App, error) {
	if contextStorage(ctx) == nil {
		return nil, nil
	}
	v, err := ctx.App("modulus")
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

// onConfigStart runs f when ctx's config starts (app.OnStart), or at once
// when there is no app (see modulusApp).
func onConfigStart(app *App, f func()) {
	if app == nil {
		f()
		return
	}
	app.OnStart(f)
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
