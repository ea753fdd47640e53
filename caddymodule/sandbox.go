package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddypki"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/sandbox"
)

func init() {
	caddy.RegisterModule(Sandbox{})
}

// sandboxStores keeps each simulated account's state (QRs, webhooks,
// deliveries under way, inbox, rate windows) across config reloads, keyed
// by a hash of the secret key.
var sandboxStores = caddy.NewUsagePool()

// Sandbox is a simulator of the Modulus Labs QR Ph API, its webhooks and a
// demo app's inbox, with a web page at /sandbox/. It is a terminal handler:
// give it a listener (or a route) of its own. Point modulus_api's qr_url
// and webhooks_url at it.
type Sandbox struct {
	// SecretKey is the simulated account's secret key, the Basic-auth
	// username clients must send (with an empty password). An sk_live_
	// key is refused. {env.*}/{file.*} or, since sandbox keys are fake,
	// inline.
	SecretKey string `json:"secret_key,omitempty"`

	// EncryptionKey opens request tokens and seals answers and webhook
	// payloads. {env.*}/{file.*} or inline.
	EncryptionKey string `json:"encryption_key,omitempty"`

	// KeyEncoding says how EncryptionKey becomes 32 bytes: utf8 (default),
	// base64, base64url or hex.
	KeyEncoding string `json:"key_encoding,omitempty"`

	// ActivationCodes are the account's merchants; create-QR refuses other
	// codes. Empty accepts any well-formed code.
	ActivationCodes []string `json:"activation_codes,omitempty"`

	// RateLimit is the budget of the QR API and, separately, of the
	// webhooks API, as N/duration. Default: the provider's sandbox limit,
	// 100/1m.
	RateLimit string `json:"rate_limit,omitempty"`

	// RetryIntervals are the waits between webhook delivery attempts.
	// Default: the provider's 15m 15m 15m (4 attempts).
	RetryIntervals []caddy.Duration `json:"retry_intervals,omitempty"`

	// Latency delays every API answer (fault knob for tests).
	Latency caddy.Duration `json:"latency,omitempty"`

	// ErrorRate is the share of API calls, between 0 and 1, answered with
	// a simulated 500 (fault knob for tests).
	ErrorRate float64 `json:"error_rate,omitempty"`

	// WebhookSource is the local IP address webhooks are sent from, to
	// exercise a receiver's allow_ips (127.0.0.2 works on Linux). When it
	// cannot be bound, the default is used and a warning logged.
	WebhookSource string `json:"webhook_source,omitempty"`

	// InboxSignSecret, when set, makes the demo inbox verify the
	// Webhook-Signature of deliveries (Standard Webhooks; the
	// modulus_webhook sign_secret) and refuse bad ones.
	InboxSignSecret string `json:"inbox_sign_secret,omitempty"`

	// Callbacks are registered at start-up for both webhook actions (as
	// POST /v1/webhooks would), so the simulator delivers with no
	// registration step: the quickstart names modulus_webhook's URL here.
	Callbacks []string `json:"callbacks,omitempty"`

	sim        *sandbox.Simulator
	poolKey    string
	unregister func()
}

// CaddyModule returns the Caddy module information.
func (Sandbox) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.modulus_sandbox",
		New: func() caddy.Module { return new(Sandbox) },
	}
}

// Provision resolves the secrets, checks every option and attaches the
// simulator to its account's state.
func (s *Sandbox) Provision(ctx caddy.Context) error {
	logger := ctx.Logger()
	if err := checkRules(sandboxRules, s); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	secret, _, err := resolveSecret(repl, "secret_key", s.SecretKey, true)
	if err != nil {
		return err
	}
	keyText, _, err := resolveSecret(repl, "encryption_key", s.EncryptionKey, true)
	if err != nil {
		return err
	}
	enc, err := crypto.ParseEncoding(s.KeyEncoding)
	if err != nil {
		return fmt.Errorf("key_encoding: %w", err)
	}
	key, err := crypto.NewKey("encryption_key", keyText, enc)
	if err != nil {
		return err
	}
	cfg := sandbox.Config{
		SecretKey: secret, EncryptionKey: key, ActivationCodes: s.ActivationCodes,
		Latency: time.Duration(s.Latency), ErrorRate: s.ErrorRate, WebhookSource: s.WebhookSource, Callbacks: s.Callbacks,
		Logger: logger, RootCAs: internalCARoots(contextStorage(ctx)),
		Observer: sandboxMetrics{},
	}
	app, err := modulusApp(ctx)
	if err != nil {
		return err
	}
	cfg.LedgerLookup = app.sandboxLookup() // the page shows the ledger's status too
	if s.RateLimit != "" {
		if cfg.RateLimit, err = policy.ParseRateLimit(s.RateLimit); err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
	}
	cfg.RetryIntervals = durations(s.RetryIntervals)
	if s.InboxSignSecret != "" {
		if cfg.InboxSignSecret, _, err = resolveSecret(repl, "inbox_sign_secret", s.InboxSignSecret, true); err != nil {
			return err
		}
	}

	// A hash, not the key, names the pooled state (and the status entry).
	sum := sha256.Sum256([]byte("qrphgate/sandbox/" + secret))
	account := hex.EncodeToString(sum[:8])
	val, _, err := sandboxStores.LoadOrNew(account, func() (caddy.Destructor, error) {
		return sandbox.NewStore(clock.Real()), nil
	})
	if err != nil {
		return err
	}
	s.poolKey = account
	if s.sim, err = sandbox.New(cfg, val.(*sandbox.Store)); err != nil {
		return err
	}
	sim := s.sim
	s.unregister = status.register("sandbox", "account-"+account, func() any { return sim.Status() })
	logger.Info("Modulus Labs sandbox simulator ready",
		zap.String("account", account), zap.String("webhook_source", sim.WebhookSource()))
	return nil
}

// Cleanup releases the account state (destroyed with the last user, which
// stops its delivery goroutines) and the status entry. It tolerates a
// Provision that failed half-way.
func (s *Sandbox) Cleanup() error {
	if s.unregister != nil {
		s.unregister()
	}
	if s.poolKey != "" {
		if _, err := sandboxStores.Delete(s.poolKey); err != nil {
			return err
		}
		s.poolKey = ""
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. The simulator answers
// every request it gets; next is never called.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if s.sim == nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("sandbox not provisioned"))
	}
	s.sim.ServeHTTP(w, r)
	return nil
}

// contextStorage is ctx.Storage(), or nil for a context built without a
// config (as unit tests build them), where Storage would panic.
func contextStorage(ctx caddy.Context) (st certmagic.Storage) {
	defer func() {
		if recover() != nil {
			st = nil
		}
	}()
	return ctx.Storage()
}

// internalCARootKey is where Caddy's PKI app keeps the root of its default
// ("local") CA, the one `tls internal` certificates chain to.
var internalCARootKey = path.Join("pki", "authorities", caddypki.DefaultCAID, "root.crt")

// internalCARoots returns the roots webhook deliveries verify HTTPS
// callbacks against: the system roots plus Caddy's internal CA once it
// exists in storage, so that a `tls internal` modulus_webhook in the same
// process is trusted as a real provider would trust a public certificate.
// Until the CA exists it returns nil (system roots only) and looks again
// on the next delivery.
func internalCARoots(storage certmagic.Storage) func() *x509.CertPool {
	var (
		mu   sync.Mutex
		pool *x509.CertPool
	)
	return func() *x509.CertPool {
		mu.Lock()
		defer mu.Unlock()
		if pool != nil || storage == nil {
			return pool
		}
		pem, err := storage.Load(context.Background(), internalCARootKey)
		if err != nil {
			return nil
		}
		p, err := x509.SystemCertPool()
		if err != nil {
			p = x509.NewCertPool()
		}
		if !p.AppendCertsFromPEM(pem) {
			return nil
		}
		pool = p
		return pool
	}
}

// sandboxMetrics is the simulator's Observer. The label values come from
// fixed sets (endpoint names, HTTP statuses, outcomes).
type sandboxMetrics struct{}

func (sandboxMetrics) Request(endpoint string, status int) {
	metricsSet.GetOrCreateCounter(fmt.Sprintf(`qrphgate_sandbox_requests_total{endpoint=%q,status="%d"}`, endpoint, status)).Inc()
}

func (sandboxMetrics) Attempt(outcome string) {
	metricsSet.GetOrCreateCounter(fmt.Sprintf(`qrphgate_sandbox_webhook_attempts_total{outcome=%q}`, outcome)).Inc()
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Sandbox)(nil)
	_ caddy.CleanerUpper          = (*Sandbox)(nil)
	_ caddyhttp.MiddlewareHandler = (*Sandbox)(nil)
	_ caddy.Destructor            = (*sandbox.Store)(nil)
	_ sandbox.Observer            = sandboxMetrics{}
)
