package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

func init() {
	caddy.RegisterModule(API{})
	httpcaddyfile.RegisterHandlerDirective("modulus_api", parseAPICaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("modulus_api", httpcaddyfile.Before, "reverse_proxy")
}

// API is the outbound gateway (http.handlers.modulus_api): the app POSTs
// plain JSON on loopback, and qrphgate validates it, injects the
// credentials, encrypts it, paces it under the provider's rate limit,
// retries only what is safe, circuit-breaks a failing upstream and returns
// the decrypted answer. It is a terminal handler: it answers every request
// (unknown paths get a JSON 404).
//
// Secrets (secret_key, encryption_key, activation codes) must be {env.*} or
// {file.*} placeholders, resolved at provision time so they never enter the
// config; only activation codes may be inline, and only in the sandbox.
type API struct {
	// Environment is sandbox or production (required). It selects the
	// defaults of the embedded policy and the checks applied at start-up.
	Environment string `json:"environment,omitempty"`

	// SecretKey is the provider's secret key (HTTP Basic username).
	SecretKey string `json:"secret_key,omitempty"`

	// EncryptionKey is the JWE key for requests and answers.
	EncryptionKey string `json:"encryption_key,omitempty"`

	// KeyEncoding says how EncryptionKey becomes 32 bytes: utf8 (default),
	// base64, base64url or hex.
	KeyEncoding string `json:"key_encoding,omitempty"`

	// ActivationCode is the default merchant, used when a request names none.
	ActivationCode string `json:"activation_code,omitempty"`

	// Merchants are further activation codes a request may name.
	Merchants []string `json:"merchants,omitempty"`

	// QRURL is the QR API base URL (default: the environment's).
	QRURL string `json:"qr_url,omitempty"`

	// WebhooksURL is the webhook-management API base URL (default: the
	// environment's; production has none published).
	WebhooksURL string `json:"webhooks_url,omitempty"`

	// WebhooksPayload is how webhook-management bodies are sent: plain JSON
	// (default) or jwe ({"Token": JWE}); the provider's pages disagree.
	WebhooksPayload string `json:"webhooks_payload,omitempty"`

	// RateLimit is the provider's budget, "N/duration" (default: the
	// environment's, 100/1m sandbox and 1000/1m production).
	RateLimit string `json:"rate_limit,omitempty"`

	// MerchantRateLimit, "N/duration", caps each merchant's (activation
	// code's) QR creations inside the account's budget, so that one
	// merchant of a platform cannot use up what the others share; over it
	// a call gets 429 merchant_rate_limited before it takes a rate slot.
	// Unset: no cap.
	MerchantRateLimit string `json:"merchant_rate_limit,omitempty"`

	// MaxWait is the longest a call waits for rate slots, Retry-After and
	// retry backoff together (default 10s; 0 never waits).
	MaxWait *caddy.Duration `json:"max_wait,omitempty"`

	// MaxQueue bounds the calls waiting for a rate slot (default: the rate
	// limit's count).
	MaxQueue int `json:"max_queue,omitempty"`

	// Timeout bounds each upstream attempt (default 15s).
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Retries is the number of extra attempts where a retry is safe
	// (default 2).
	Retries *int `json:"retries,omitempty"`

	// AuthFailures consecutive 401/403 answers stop authenticated calls
	// until reload (default 3).
	AuthFailures int `json:"auth_failures,omitempty"`

	// CircuitBreaker configures the per-upstream breakers.
	CircuitBreaker *BreakerConfig `json:"circuit_breaker,omitempty"`

	// Store is where the rate budget and idempotency cache live: memory
	// (default), file:///absolute/path (kept across restarts of this
	// sidecar) or a Redis deployment shared by replicas:
	// redis://host:port/db (one server), redis-cluster://host:port,host:port,...
	// (a Redis Cluster) or redis-sentinel://host:port,host:port/MASTERNAME[/db]
	// (Sentinel), each with a rediss form for TLS (docs/managed-redis.md).
	Store string `json:"store,omitempty"`

	// Policy is an optional override file for the embedded default policy.
	Policy string `json:"policy,omitempty"`

	engine     *outbound.Handler
	logger     *zap.Logger
	sharedKey  string
	stores     *outboundStores
	unregister func()
}

// BreakerConfig is the circuit_breaker option; zero fields take the
// defaults (failures 5, window 30s, open 30s, probes 1).
type BreakerConfig struct {
	// Failures within Window open the breaker.
	Failures int `json:"failures,omitempty"`

	// Window is the sliding window failures are counted in.
	Window caddy.Duration `json:"window,omitempty"`

	// Open is how long the breaker stays open before probing.
	Open caddy.Duration `json:"open,omitempty"`

	// Probes is how many trial calls the half-open breaker admits.
	Probes int `json:"probes,omitempty"`
}

func (b *BreakerConfig) settings() outbound.BreakerSettings {
	s := outbound.DefaultBreakerSettings
	if b == nil {
		return s
	}
	if b.Failures != 0 {
		s.Failures = b.Failures
	}
	if b.Window != 0 {
		s.Window = time.Duration(b.Window)
	}
	if b.Open != 0 {
		s.Open = time.Duration(b.Open)
	}
	if b.Probes != 0 {
		s.Probes = b.Probes
	}
	return s
}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.modulus_api",
		New: func() caddy.Module { return new(API) },
	}
}

// outboundShared is the pooled state that survives reloads.
var outboundShared = caddy.NewUsagePool()

type sharedState struct{ *outbound.Shared }

func (s sharedState) Destruct() error {
	s.Close()
	return nil
}

// Provision resolves the secrets, runs the start-up checks and builds the
// engine. Every error names the option, never its value.
func (a *API) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	cfg, err := a.config(caddy.NewReplacer())
	if err != nil {
		return err
	}
	// The app first: its at-rest keys must be in use before the store
	// loads what it sealed.
	app, err := modulusApp(ctx)
	if err != nil {
		return err
	}
	a.stores, err = openOutboundStore(ctx, a.Store, cfg.Environment.Name)
	if err != nil {
		return err
	}
	cfg.Budget, cfg.Idempotency, cfg.StoreKind = a.stores.budget, a.stores.idempotency, a.stores.kind
	if a.stores.kind == "redis" {
		app.sharedByReplicas("modulus_api's store")
	}
	if err := a.merchantLimiter(&cfg); err != nil {
		return err
	}

	account := outbound.AccountID(cfg.SecretKey.Reveal())
	breaker := a.CircuitBreaker.settings()
	env := cfg.Environment.Name
	whURL := ""
	if cfg.WebhooksURL != nil {
		whURL = cfg.WebhooksURL.String()
	}
	// The idempotency cache bound to the account's budget: a create call
	// claims its key and takes its rate slot in one step (one Redis round
	// trip; see store.ClaimTaker).
	if wb, ok := cfg.Idempotency.(interface {
		WithBudget(budgetKey string) store.ClaimTaker
	}); ok {
		cfg.Idempotency = wb.WithBudget(outbound.BudgetKey(env, account))
	}
	a.sharedKey = strings.Join([]string{"outbound", env, cfg.QRURL.String(), whURL, account, breaker.String(), a.stores.key}, "|")
	obs := apiMetrics{env: env, account: account, log: a.logger}
	val, _, err := outboundShared.LoadOrNew(a.sharedKey, func() (caddy.Destructor, error) {
		s, err := outbound.NewShared(outbound.SharedOptions{
			Budget: cfg.Budget, BudgetKey: outbound.BudgetKey(env, account), Breaker: breaker, Clock: clock.Real(),
			Observer: obs,
		})
		if err != nil {
			return nil, err
		}
		breakerGauge(env, account, "qr", outbound.BreakerClosed)
		breakerGauge(env, account, "webhooks", outbound.BreakerClosed)
		return sharedState{s}, nil
	})
	if err != nil {
		a.sharedKey = ""
		return err
	}
	cfg.Shared = val.(sharedState).Shared
	cfg.Logger = a.logger
	cfg.Observer = obs
	cfg.Ledger = app.outboundLedger() // the payments ledger (the modulus app's)
	cfg.Auditor = app.auditor()
	obs.precreate()
	if a.engine, err = outbound.New(cfg); err != nil {
		return err
	}
	engine := a.engine
	name := env + " " + cfg.QRURL.Host + " " + account
	unstatus := status.register("outbound", name, func() any {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return engine.Status(ctx)
	})
	unhealth := registerHealthEngine(name, env, account, engine)
	a.unregister = func() { unstatus(); unhealth() }
	a.logger.Info("modulus_api ready", zap.String("environment", env), zap.String("qr_url", cfg.QRURL.String()),
		zap.String("webhooks_url", whURL), zap.String("rate_limit", cfg.RateLimit.String()), zap.String("store", a.stores.kind))
	return nil
}

// config turns the options into the engine's configuration: every
// option's rule (apiRules, the same the Caddyfile applies) first, then the
// secrets resolved and the start-up checks that need them.
func (a *API) config(repl *caddy.Replacer) (outbound.Config, error) {
	var cfg outbound.Config
	if err := checkRules(apiRules, a); err != nil {
		return cfg, err
	}
	pol, err := policy.Load(a.Policy)
	if err != nil {
		return cfg, fmt.Errorf("policy: %w", err)
	}
	cfg.Policy = pol
	if cfg.Environment, err = pol.Environment(a.Environment); err != nil {
		return cfg, err
	}
	if err := a.credentials(repl, &cfg); err != nil {
		return cfg, err
	}
	if err := a.merchants(repl, &cfg); err != nil {
		return cfg, err
	}
	if err := a.upstreams(&cfg); err != nil {
		return cfg, err
	}
	return cfg, a.limits(&cfg)
}

// credentials resolves the secret key and the encryption key, which are
// placeholders in every environment (a sandbox key is still a real
// account's credential), and checks the key against the environment.
func (a *API) credentials(repl *caddy.Replacer, cfg *outbound.Config) error {
	secret, _, err := resolveSecret(repl, "secret_key", a.SecretKey, false)
	if err != nil {
		return err
	}
	warning, err := cfg.Policy.CheckSecretKey(cfg.Environment, secret)
	if err != nil {
		return err
	}
	if warning != "" {
		a.logger.Warn(warning)
	}
	cfg.SecretKey = crypto.Secret(secret)

	enc, err := crypto.ParseEncoding(a.KeyEncoding)
	if err != nil {
		return fmt.Errorf("key_encoding: %w", err)
	}
	material, _, err := resolveSecret(repl, "encryption_key", a.EncryptionKey, false)
	if err != nil {
		return err
	}
	cfg.EncryptionKey, err = crypto.NewKey("encryption_key", material, enc)
	return err
}

// merchants resolves the activation codes, which may be inline in the
// sandbox only (the rules of activation_code and merchants, apiRules,
// have passed), and checks each against the policy's format.
func (a *API) merchants(repl *caddy.Replacer, cfg *outbound.Config) error {
	literalOK := cfg.Environment.Name == policy.Sandbox
	resolve := func(field, raw string) (string, error) {
		code, _, err := resolveSecret(repl, field, raw, literalOK)
		if err != nil {
			return "", err
		}
		return code, cfg.Policy.CheckActivationCode(field, code)
	}
	if a.ActivationCode != "" {
		code, err := resolve("activation_code", a.ActivationCode)
		if err != nil {
			return err
		}
		cfg.DefaultMerchant = code
	}
	for i, raw := range a.Merchants {
		code, err := resolve(listName("merchants", i), raw)
		if err != nil {
			return err
		}
		cfg.Merchants = append(cfg.Merchants, code)
	}
	return nil
}

// upstreams sets the provider's base URLs (the environment's by default)
// and refuses one that belongs to the other environment.
func (a *API) upstreams(cfg *outbound.Config) error {
	env := cfg.Environment
	qr := cmp.Or(a.QRURL, env.QRURL)
	var err error
	if cfg.QRURL, err = policy.CheckUpstreamURL("qr_url", qr); err != nil {
		return err
	}
	if err := cfg.Policy.CheckEnvironmentURL(env, "qr_url", cfg.QRURL); err != nil {
		return err
	}
	wh := cmp.Or(a.WebhooksURL, env.WebhooksURL)
	if wh == "" {
		a.logger.Warn("webhooks_url is not configured: /v1/webhooks answers 501 webhooks_not_configured " +
			"(the provider has not published the production webhooks host; set webhooks_url from your onboarding details)")
	} else {
		if cfg.WebhooksURL, err = policy.CheckUpstreamURL("webhooks_url", wh); err != nil {
			return err
		}
		if err := cfg.Policy.CheckEnvironmentURL(env, "webhooks_url", cfg.WebhooksURL); err != nil {
			return err
		}
	}
	cfg.WebhooksPayload = a.WebhooksPayload
	return nil
}

// limits sets pacing, retries and the credentials fuse, with their
// defaults; the values were checked by apiRules.
func (a *API) limits(cfg *outbound.Config) error {
	cfg.RateLimit = cfg.Environment.RateLimit
	if a.RateLimit != "" {
		var err error
		if cfg.RateLimit, err = policy.ParseRateLimit(a.RateLimit); err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
	}
	cfg.MaxWait = outbound.DefaultMaxWait
	if a.MaxWait != nil {
		cfg.MaxWait = time.Duration(*a.MaxWait)
	}
	cfg.MaxQueue = a.MaxQueue
	cfg.Timeout = cmp.Or(time.Duration(a.Timeout), outbound.DefaultTimeout)
	cfg.Retries = outbound.DefaultRetries
	if a.Retries != nil {
		cfg.Retries = *a.Retries
	}
	cfg.AuthFailures = a.AuthFailures
	return nil
}

// Cleanup releases the pooled state; it tolerates a half-provisioned module.
func (a *API) Cleanup() error {
	if a.unregister != nil {
		a.unregister()
	}
	var errs []error
	if a.sharedKey != "" {
		if _, err := outboundShared.Delete(a.sharedKey); err != nil {
			errs = append(errs, err)
		}
	}
	if a.stores != nil {
		if err := a.stores.release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. The engine answers
// every request itself.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	a.engine.ServeHTTP(w, r)
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddy.CleanerUpper          = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
)
