package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/sandbox"
	"github.com/qrphgate/qrphgate/store"
)

// ledgers holds the payments ledgers, one per back end (the ledger
// option), across reloads: the engine, its store and its background job
// (expiry sweep, retention). A reload that keeps the option keeps all
// three; the settings of the config that starts are applied to it then.
var ledgers = caddy.NewUsagePool()

// currentLedger is the ledger of the config that started last, for the
// admin API and the command line.
var currentLedger atomic.Pointer[ledgerInstance]

// ledgerInstance is one pooled ledger.
type ledgerInstance struct {
	name     string // the back end, without a password, for status and logs
	kind     string // memory, file or redis
	engine   *ledger.Ledger
	st       store.Ledger
	release  func() error // the pooled Redis connection, if any
	cancel   context.CancelFunc
	done     chan struct{}
	started  sync.Once
	unstatus func()
	unreseal func() // stops the re-encryption passes
}

// start runs the background job, once per instance.
func (li *ledgerInstance) start() {
	li.started.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		li.cancel = cancel
		go func() {
			defer close(li.done)
			li.engine.Run(ctx)
		}()
	})
}

// Destruct implements caddy.Destructor: it stops the job and closes the
// store.
func (li *ledgerInstance) Destruct() error {
	li.unstatus()
	li.unreseal()
	currentLedger.CompareAndSwap(li, nil)
	li.started.Do(func() { close(li.done) }) // never started: nothing to wait for
	if li.cancel != nil {
		li.cancel()
	}
	<-li.done
	err := li.st.Close()
	if li.release != nil {
		err = errors.Join(err, li.release())
	}
	return err
}

// appLedger is a config's hold on its ledger, and what its handlers add.
type appLedger struct {
	inst *ledgerInstance
	key  string

	mu      sync.Mutex
	emitter *inbound.Deliverer // the first modulus_webhook's, for expiry events
	// replicated names what the config's handlers keep on Redis, shared
	// by replicas (a modulus_api store, a modulus_webhook spool or store).
	replicated []string
}

// provisionLedger opens (or joins) the ledger the option names; its
// settings apply, and its job starts, when the config starts.
func (a *App) provisionLedger(ctx caddy.Context) error {
	inst, key, err := acquireLedger(ctx, a.Ledger)
	if err != nil {
		return err
	}
	a.ledger = &appLedger{inst: inst, key: key}
	settings := ledger.DefaultSettings()
	if a.ExpiryGrace != nil {
		settings.Grace = time.Duration(*a.ExpiryGrace)
	}
	if a.LedgerRetention != 0 {
		settings.Retention = time.Duration(a.LedgerRetention)
	}
	settings.ExpiryEvents = a.ExpiryEvents == "on"
	al := a.ledger
	a.OnStart(func() {
		if msg := unsharedLedgerWarning(inst.kind, al.replicatedBy()); msg != "" {
			a.logger.Warn(msg, zap.Strings("on_redis", al.replicatedBy()), zap.String("ledger", inst.kind))
		}
		s := settings
		if d := al.expiryDeliverer(); d != nil {
			s.Emitter = expiryEmitter{d}
		}
		inst.engine.Configure(s)
		inst.start()
		currentLedger.Store(inst)
	})
	return nil
}

func (a *App) releaseLedger() error {
	if a.ledger == nil {
		return nil
	}
	key := a.ledger.key
	a.ledger = nil
	_, err := ledgers.Delete(key)
	return err
}

// acquireLedger returns the pooled ledger for spec (the option as
// configured) and its pool key.
func acquireLedger(ctx caddy.Context, spec string) (*ledgerInstance, string, error) {
	if err := checkLedgerSpec(spec); err != nil {
		return nil, "", err
	}
	var (
		key, name, kind string
		open            func() (store.Ledger, func() error, error)
	)
	switch {
	case spec == "" || spec == "memory":
		key, name, kind = "ledger|memory", "memory", "memory"
		open = func() (store.Ledger, func() error, error) { return store.NewMemoryLedger(), nil, nil }
	case strings.HasPrefix(spec, "file://"):
		path := strings.TrimPrefix(caddy.NewReplacer().ReplaceKnown(spec, ""), "file://")
		if !filepath.IsAbs(path) {
			return nil, "", errors.New("ledger: file:// takes an absolute file path (a placeholder in it resolved to a relative one)")
		}
		path = filepath.Clean(path)
		if err := checkOwnFile("ledger", fileRoleLedger, path); err != nil {
			return nil, "", err
		}
		key, name, kind = "ledger|file|"+path, "file "+path, "file"
		open = func() (store.Ledger, func() error, error) {
			f, err := store.OpenFileLedger(path, 0, atRest)
			if err != nil {
				return nil, nil, fmt.Errorf("ledger: %w", err)
			}
			if n := f.Undecryptable(); n > 0 {
				caddy.Log().Named("modulus.ledger").Error("ledger records cannot be decrypted with the configured at_rest_key; "+
					"they stay in the file, unlisted, until the key that sealed them is configured again", zap.String("file", path), zap.Int("records", n))
			}
			return f, nil, nil
		}
	default:
		resolved := resolveRedisURL(caddy.NewReplacer(), spec)
		key, name, kind = "ledger|redis|"+resolved, store.RedactURL(resolved), "redis"
		open = func() (store.Ledger, func() error, error) {
			r, release, err := acquireRedis(ctx, resolved)
			if err != nil {
				return nil, nil, fmt.Errorf("ledger: %w", err)
			}
			return store.NewRedisLedger(r), release, nil
		}
	}
	ledgerMetricsOnce.Do(initLedgerMetrics)
	v, _, err := ledgers.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, release, err := open()
		if err != nil {
			return nil, err
		}
		engine, err := ledger.New(ledger.Config{
			Store: st, Clock: clock.Real(), Logger: caddy.Log().Named("modulus.ledger"), Observer: ledgerMetrics{},
		})
		if err != nil {
			_ = st.Close()
			if release != nil {
				_ = release()
			}
			return nil, err
		}
		li := &ledgerInstance{name: name, kind: kind, engine: engine, st: st, release: release, done: make(chan struct{}), unreseal: func() {}}
		if r, ok := st.(store.Resealer); ok {
			li.unreseal = startReseal("ledger", name, r, caddy.Log().Named("modulus.ledger"))
		}
		li.unstatus = status.register("ledger", name, li.status)
		return li, nil
	})
	if err != nil {
		return nil, "", err
	}
	return v.(*ledgerInstance), key, nil
}

// ledgerStatus is the ledger's entry under "ledger" in /modulus/status.
type ledgerStatus struct {
	Store        string         `json:"store"`
	Transactions map[string]int `json:"transactions,omitempty"`
	ExpiryGrace  string         `json:"expiry_grace"`
	Retention    string         `json:"ledger_retention"`
	ExpiryEvents bool           `json:"expiry_events"`
	// Emitting says whether this process can send expiry events (it has
	// a modulus_webhook).
	Emitting bool   `json:"expiry_events_here"`
	Error    string `json:"error,omitempty"`
}

func (li *ledgerInstance) status() any {
	s := li.engine.Settings()
	out := ledgerStatus{Store: li.kind, ExpiryGrace: s.Grace.String(), Retention: s.Retention.String(),
		ExpiryEvents: s.ExpiryEvents, Emitting: s.Emitter != nil}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := li.engine.Counts(ctx)
	if err != nil {
		out.Error = err.Error()
	}
	out.Transactions = counts
	return out
}

// useForExpiryEvents offers a modulus_webhook's deliverer for the ledger's
// expiry events; the config's first one is used.
func (a *App) useForExpiryEvents(d *inbound.Deliverer) {
	if a == nil || a.ledger == nil {
		return
	}
	a.ledger.mu.Lock()
	defer a.ledger.mu.Unlock()
	if a.ledger.emitter == nil {
		a.ledger.emitter = d
	}
}

// sharedByReplicas records that a handler of the config keeps what (its
// store, its spool) on Redis, where replicas share it: a memory ledger
// beside it is worth a warning (unsharedLedgerWarning).
func (a *App) sharedByReplicas(what string) {
	if a == nil || a.ledger == nil {
		return
	}
	a.ledger.mu.Lock()
	defer a.ledger.mu.Unlock()
	if !slices.Contains(a.ledger.replicated, what) {
		a.ledger.replicated = append(a.ledger.replicated, what)
	}
}

func (al *appLedger) replicatedBy() []string {
	al.mu.Lock()
	defer al.mu.Unlock()
	return slices.Clone(al.replicated)
}

// unsharedLedgerWarning is the warning a config gets when its handlers
// share state through Redis (they run as replicas) while its ledger is in
// memory: each replica would keep a ledger of its own, with only the QRs it
// created and the webhooks it received. "" when there is nothing to say.
func unsharedLedgerWarning(kind string, replicated []string) string {
	if kind != "memory" || len(replicated) == 0 {
		return ""
	}
	return "the payments ledger is in memory while " + strings.Join(replicated, " and ") +
		" is on Redis, shared by replicas: each replica keeps a ledger of its own and sees only the payments it handled " +
		"(a status call may answer 404, a result may be flagged unknown_reference); set `ledger` in the global modulus block " +
		"to the same Redis (docs/ledger.md)"
}

func (al *appLedger) expiryDeliverer() *inbound.Deliverer {
	al.mu.Lock()
	defer al.mu.Unlock()
	return al.emitter
}

// engine is the config's ledger, nil without an app (unit tests).
func (a *App) engine() *ledger.Ledger {
	if a == nil || a.ledger == nil {
		return nil
	}
	return a.ledger.inst.engine
}

// outboundLedger is the ledger as modulus_api uses it (nil without one).
func (a *App) outboundLedger() outbound.Ledger {
	if l := a.engine(); l != nil {
		return outboundLedger{l}
	}
	return nil
}

// inboundLedger is the ledger as modulus_webhook uses it (nil without one).
func (a *App) inboundLedger() inbound.Ledger {
	if l := a.engine(); l != nil {
		return inboundLedger{l}
	}
	return nil
}

// sandboxLookup is the ledger as the sandbox page reads it (nil without
// one).
func (a *App) sandboxLookup() func(context.Context, []string) (map[string]sandbox.LedgerView, error) {
	l := a.engine()
	if l == nil {
		return nil
	}
	return func(ctx context.Context, ids []string) (map[string]sandbox.LedgerView, error) {
		txs, err := l.Lookup(ctx, ids)
		if err != nil {
			return nil, err
		}
		out := make(map[string]sandbox.LedgerView, len(txs))
		for id, t := range txs {
			out[id] = sandbox.LedgerView{Status: t.Status, Flags: t.Flags}
		}
		return out, nil
	}
}

// outboundLedger adapts the ledger to outbound.Ledger.
type outboundLedger struct{ l *ledger.Ledger }

func (o outboundLedger) RecordQR(ctx context.Context, qr outbound.CreatedQR) error {
	return o.l.Record(ctx, ledger.QR{
		ID: qr.ID, ActivationCode: qr.ActivationCode, Reference: qr.Reference, Amount: int64(qr.Amount),
		Currency: qr.Currency, CreatedAt: qr.CreatedAt, ExpiresAt: qr.ExpiresAt,
	})
}

func (o outboundLedger) QRStatus(ctx context.Context, q outbound.StatusQuery) ([]byte, error) {
	var (
		t   ledger.Transaction
		err error
	)
	if q.ID != "" {
		t, err = o.l.Transaction(ctx, q.ID)
	} else {
		t, err = o.l.ByReference(ctx, q.ActivationCode, q.Reference)
	}
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, outbound.ErrQRNotFound
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(t.Document())
}

// inboundLedger adapts the ledger to inbound.Ledger.
type inboundLedger struct{ l *ledger.Ledger }

func (i inboundLedger) Reconcile(ctx context.Context, r inbound.PaymentResult) ([]string, error) {
	return i.l.Reconcile(ctx, ledger.Notification{
		EventID: r.EventID, ActivationCode: r.ActivationCode, Action: r.Action, TransactionID: r.TransactionID,
		Reference: r.Reference, Amount: r.Amount, HasAmount: r.HasAmount, Currency: r.Currency, ReceivedAt: r.ReceivedAt,
	})
}

// expiryEmitter queues the ledger's expiry events in a modulus_webhook's
// spool.
type expiryEmitter struct{ d *inbound.Deliverer }

func (e expiryEmitter) EmitExpired(ctx context.Context, ev ledger.ExpiryEvent) error {
	_, err := e.d.Emit(ctx, inbound.GatewayEvent{Key: ev.Key, At: ev.At, Action: ledger.ActionExpired, Reference: ev.Reference, Body: ev.Body})
	return err
}

// Interface guards.
var (
	_ caddy.Destructor = (*ledgerInstance)(nil)
	_ outbound.Ledger  = outboundLedger{}
	_ inbound.Ledger   = inboundLedger{}
	_ ledger.Emitter   = expiryEmitter{}
)
