package outbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Outbound defaults, documented in docs/modulus_api.md.
const (
	DefaultMaxWait = 10 * time.Second
	DefaultTimeout = 15 * time.Second
	DefaultRetries = 2
)

// Webhook-management request bodies: plain JSON (the provider's curl
// examples) or wrapped in {"Token": JWE} (other versions of the same pages).
const (
	WebhooksPayloadPlain = "plain"
	WebhooksPayloadJWE   = "jwe"
)

// Config is everything the outbound gateway needs. caddymodule
// builds it at provision time from resolved secrets and checked options.
type Config struct {
	// Policy holds the validation rules (the embedded default or an override).
	Policy *policy.Policy

	// Environment is the provider environment's profile (sandbox or production).
	Environment policy.Environment

	// SecretKey is the Basic-auth username (password empty).
	SecretKey crypto.Secret

	// EncryptionKey encrypts requests and decrypts answers.
	EncryptionKey crypto.Key

	// DefaultMerchant is the activation code used when a request names none
	// (may be empty when Merchants is not).
	DefaultMerchant string

	// Merchants are the further activation codes a request may name.
	Merchants []string

	// QRURL is the checked base URL of the provider's QR API. Required.
	QRURL *url.URL

	// WebhooksURL is the checked base URL of the provider's webhook
	// management API; nil means that API is not configured.
	WebhooksURL *url.URL

	// WebhooksPayload is WebhooksPayloadPlain (default) or WebhooksPayloadJWE.
	WebhooksPayload string

	// RateLimit is the provider's budget: no sliding window of its period
	// carries more upstream calls than its count.
	RateLimit policy.RateLimit

	// MaxWait bounds the total time a call spends waiting for rate slots,
	// Retry-After and retry backoff.
	MaxWait time.Duration

	// MaxQueue bounds the calls waiting for a slot (0: RateLimit.Requests).
	MaxQueue int

	// Timeout bounds each upstream attempt.
	Timeout time.Duration

	// Retries is the number of extra attempts where a retry is safe.
	Retries int

	// AuthFailures consecutive 401/403 answers blow the credentials fuse.
	AuthFailures int

	// Budget is where rate slots are taken (shared by replicas through Redis).
	Budget store.RateBudget

	// Idempotency keeps one answer per merchant reference for the QR validity.
	Idempotency store.Idempotency

	// StoreKind names the store for the status page ("memory", "redis").
	StoreKind string

	// Shared is the state that outlives a configuration (NewShared).
	Shared *Shared

	// Clock is the time source; clock.Real() when nil.
	Clock clock.Clock

	// Logger receives the gateway's logs; zap.NewNop() when nil.
	Logger *zap.Logger

	// Observer receives metrics; nil means NopObserver.
	Observer Observer

	// Auditor receives the audit trail's events (a QR created); nil means
	// proxy.NopAuditor.
	Auditor proxy.Auditor

	// Ledger, when set, records every QR created and answers the status
	// calls (GET /v1/pay/qr/{id}); without one they answer 404.
	Ledger Ledger

	// Backoff spaces retries after connection failures; zero means 100ms..2s.
	Backoff proxy.Backoff

	// MerchantRateLimit caps each merchant's (activation code's) QR
	// creations inside the account's budget; zero means no cap. Counted in
	// MerchantLimiter (see merchantlimit.go).
	MerchantRateLimit policy.RateLimit

	// MerchantLimiter counts MerchantRateLimit; nil means no cap.
	MerchantLimiter *proxy.WindowLimiter
}

// Shared is the state that must survive a config reload: the pacer
// and its queue, the circuit breakers and the upstream connection pool. The
// Caddy adapter keeps it in a caddy.UsagePool.
type Shared struct {
	// Pacer queues calls for rate slots, first come first served.
	Pacer *Pacer
	// QRBreaker and WebhooksBreaker guard the two upstream APIs separately.
	QRBreaker, WebhooksBreaker *Breaker
	// Transport is the upstream connection pool.
	Transport http.RoundTripper
}

// SharedOptions configure NewShared.
type SharedOptions struct {
	// Budget is the rate-slot store the pacer takes from.
	Budget store.RateBudget

	// BudgetKey names the account's window in Budget (see BudgetKey()).
	BudgetKey string

	// Breaker configures both circuit breakers.
	Breaker BreakerSettings

	// Clock is the time source; clock.Real() when nil.
	Clock clock.Clock

	// Observer hears of every breaker transition (BreakerChanged, with the
	// breaker's name: "qr" or "webhooks"); NopObserver when nil.
	Observer Observer

	// Transport overrides the tuned default (tests inject faults here).
	Transport http.RoundTripper
}

// NewShared builds the long-lived state.
func NewShared(o SharedOptions) (*Shared, error) {
	mk := func(name string) (*Breaker, error) { return NewBreaker(name, o.Breaker, o.Clock, o.Observer) }
	qr, err := mk("qr")
	if err != nil {
		return nil, err
	}
	wh, err := mk("webhooks")
	if err != nil {
		return nil, err
	}
	rt := o.Transport
	if rt == nil {
		rt = NewUpstreamTransport()
	}
	return &Shared{Pacer: NewPacer(o.Budget, o.BudgetKey, o.Clock), QRBreaker: qr, WebhooksBreaker: wh, Transport: rt}, nil
}

// Close releases idle upstream connections.
func (s *Shared) Close() {
	if t, ok := s.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// NewUpstreamTransport is the connection pool toward the provider. It keeps
// many idle connections per host (Caddy's reverse_proxy keeps 32), since a
// sidecar talks to one or two hosts only, and never follows redirects (it is
// used as a RoundTripper).
func NewUpstreamTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    512,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  0,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// AccountID derives a stable, non-reversible name for the provider account
// behind a secret key, used to key shared state (rate budget, idempotency)
// so that replicas with the same credentials share it.
func AccountID(secretKey string) string {
	sum := sha256.Sum256([]byte("qrphgate account\x00" + secretKey))
	return "acct_" + hex.EncodeToString(sum[:8])
}

// BudgetKey is the rate-budget key of an account in an environment.
func BudgetKey(env, accountID string) string { return "rate:" + env + ":" + accountID }

// Handler is the outbound gateway: the app's plain-JSON API in front of the
// provider. It is an http.Handler; build it with New.
type Handler struct {
	cfg       Config
	env       policy.Environment
	enc       *crypto.Encrypter
	ring      *crypto.Keyring
	basic     string // "Basic " + base64(secret_key + ":"): never logged
	scrub     *crypto.Scrubber
	merchants map[string]bool
	account   string
	fuse      *authFuse
	idem      *idempotency
	qr        *upstream
	webhooks  *upstream // nil when not configured
	log       *zap.Logger
	obs       Observer
	clock     clock.Clock
	lease     time.Duration
}

type upstream struct {
	name string
	base string // scheme://host/path without trailing slash
	// createURL is base + "/v1/pay/qr" (the QR API's only hot call).
	createURL string
	breaker   *Breaker
}

func newUpstream(name string, u *url.URL, b *Breaker) *upstream {
	base := strings.TrimSuffix(u.String(), "/")
	return &upstream{name: name, base: base, createURL: base + "/v1/pay/qr", breaker: b}
}

// New checks cfg and builds the gateway.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Policy == nil:
		return nil, errors.New("outbound: policy is required")
	case cfg.SecretKey == "":
		return nil, errors.New("outbound: secret_key is required")
	case cfg.EncryptionKey.IsZero():
		return nil, errors.New("outbound: encryption_key is required")
	case cfg.QRURL == nil:
		return nil, errors.New("outbound: qr_url is required")
	case cfg.Budget == nil || cfg.Idempotency == nil:
		return nil, errors.New("outbound: a store is required")
	case cfg.Shared == nil:
		return nil, errors.New("outbound: shared state is required")
	case cfg.RateLimit.Requests <= 0 || cfg.RateLimit.Period <= 0:
		return nil, errors.New("outbound: rate_limit is required")
	case cfg.DefaultMerchant == "" && len(cfg.Merchants) == 0:
		return nil, errors.New("outbound: activation_code or merchants is required")
	case cfg.Retries < 0:
		return nil, errors.New("outbound: retries must not be negative")
	case cfg.MaxWait < 0:
		return nil, errors.New("outbound: max_wait must not be negative")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = cfg.RateLimit.Requests
	}
	if cfg.WebhooksPayload == "" {
		cfg.WebhooksPayload = WebhooksPayloadPlain
	}
	if cfg.WebhooksPayload != WebhooksPayloadPlain && cfg.WebhooksPayload != WebhooksPayloadJWE {
		return nil, fmt.Errorf("outbound: webhooks_payload must be %s or %s", WebhooksPayloadPlain, WebhooksPayloadJWE)
	}
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff = proxy.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second, Rand: cfg.Backoff.Rand}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Auditor == nil {
		cfg.Auditor = proxy.NopAuditor{}
	}
	enc, err := crypto.NewEncrypter(cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	ring, err := crypto.NewKeyring(0, cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	secret := cfg.SecretKey.Reveal()
	o := &Handler{
		cfg:       cfg,
		env:       cfg.Environment,
		enc:       enc,
		ring:      ring,
		basic:     crypto.BasicAuthorization(secret),
		scrub:     crypto.NewScrubber(secret),
		merchants: make(map[string]bool),
		account:   AccountID(secret),
		fuse:      newAuthFuse(cfg.AuthFailures),
		log:       cfg.Logger,
		obs:       cfg.Observer,
		clock:     cfg.Clock,
		qr:        newUpstream("qr", cfg.QRURL, cfg.Shared.QRBreaker),
	}
	if cfg.WebhooksURL != nil {
		o.webhooks = newUpstream("webhooks", cfg.WebhooksURL, cfg.Shared.WebhooksBreaker)
	}
	if cfg.DefaultMerchant != "" {
		o.merchants[cfg.DefaultMerchant] = true
	}
	for _, m := range cfg.Merchants {
		o.merchants[m] = true
	}
	// A claimed reference blocks its duplicates for at most this long if
	// its owner dies: every wait, attempt and backoff it could go through.
	o.lease = cfg.MaxWait + time.Duration(cfg.Retries+1)*(cfg.Timeout+cfg.Backoff.Max) + 5*time.Second
	o.idem = newIdempotency(cfg.Idempotency, cfg.Clock)
	return o, nil
}

// ServeHTTP routes the outbound API. It always answers: unknown paths get a
// JSON 404.
func (o *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/v1/pay/qr" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		o.serveQRStatus(w, r, "")
	case p == "/v1/pay/qr":
		o.serveCreateQR(w, r)
	case strings.HasPrefix(p, statusPrefix):
		id, _ := statusID(p)
		o.serveQRStatus(w, r, id)
	case p == "/ping":
		o.servePing(w, r)
	case p == "/openapi.json":
		o.serveOpenAPI(w, r)
	case p == "/v1/webhooks" || strings.HasPrefix(p, "/v1/webhooks/"):
		o.serveWebhooks(w, r)
	default:
		o.fail(w, r, "other", newErr(http.StatusNotFound, CodeNotFound, "", "no such endpoint; see /v1/pay/qr, /v1/webhooks, /ping and /openapi.json"))
	}
}

// fail answers err to the app, counts it and logs it.
func (o *Handler) fail(w http.ResponseWriter, r *http.Request, endpoint string, err error, fields ...zap.Field) {
	e := proxy.AsError(err)
	if e.Code == CodeIdempotencyConflict {
		o.obs.IdempotencyConflict()
	}
	if e.Code == CodeQueueFull || e.Code == CodeRateLimited {
		reason := "max_wait"
		if e.Code == CodeQueueFull {
			reason = "queue_full"
		}
		o.obs.QueueRejected(reason)
	}
	o.obs.Response(endpoint, e.Status, e.Code)
	fields = append(fields, zap.String("endpoint", endpoint), zap.Int("status", e.Status), zap.String("code", e.Code))
	if e.Err != nil {
		fields = append(fields, proxy.LogString("cause", o.scrub.Scrub(e.Err.Error())))
	}
	if e.Upstream != nil {
		fields = append(fields, zap.Int("upstream_status", e.Upstream.Status), proxy.LogString("upstream_code", e.Upstream.Code))
	}
	switch {
	case e.Status == statusClientClosed:
		o.log.Debug("client left before the answer", fields...)
		return
	case e.Code == CodeStoreUnavailable:
		// The store logs the outage itself, once; each refused call is
		// a warning here, without a stack trace.
		o.log.Warn("outbound call refused: the store cannot be reached", fields...)
	case e.Status >= 500:
		o.log.Error("outbound call failed", fields...)
	default:
		o.log.Info("outbound call refused", fields...)
	}
	proxy.WriteError(w, e)
}

// Status is what GET /modulus/status shows for one modulus_api.
type Status struct {
	Environment string `json:"environment"`
	// Account is the account's non-reversible id (AccountID), which tells
	// apart two accounts on one host.
	Account     string                   `json:"account"`
	QRURL       string                   `json:"qr_url"`
	WebhooksURL string                   `json:"webhooks_url"`
	Limiter     LimiterStatus            `json:"limiter"`
	Breakers    map[string]BreakerStatus `json:"breakers"`
	Credentials CredentialsStatus        `json:"credentials"`
	Idempotency IdempotencyStatus        `json:"idempotency"`
}

// LimiterStatus is the rate budget's usage.
type LimiterStatus struct {
	Store    string `json:"store"`
	Limit    int    `json:"limit"`
	Window   string `json:"window"`
	Used     int    `json:"used"`
	Queued   int    `json:"queued"`
	MaxQueue int    `json:"max_queue"`
	MaxWait  string `json:"max_wait"`
	// Error is set when the store could not be read.
	Error string `json:"error,omitempty"`
}

// IdempotencyStatus describes the idempotency cache.
type IdempotencyStatus struct {
	// InFlight counts create calls in progress in this process.
	InFlight int `json:"in_flight"`
	// Validity is how long answers are replayed (the QR validity).
	Validity string `json:"validity"`
}

// Status reports the gateway's state; it never includes secrets.
func (o *Handler) Status(ctx context.Context) Status {
	st := Status{
		Environment: o.env.Name,
		Account:     o.account,
		QRURL:       o.qr.base,
		Breakers:    map[string]BreakerStatus{"qr": o.qr.breaker.Status()},
		Credentials: o.fuse.status(),
		Idempotency: IdempotencyStatus{InFlight: o.idem.inFlight(), Validity: time.Duration(o.cfg.Policy.QR.Validity).String()},
	}
	if o.webhooks != nil {
		st.WebhooksURL = o.webhooks.base
		st.Breakers["webhooks"] = o.webhooks.breaker.Status()
	}
	lim := o.cfg.RateLimit
	st.Limiter = LimiterStatus{Store: o.cfg.StoreKind, Limit: lim.Requests, Window: lim.Period.String(),
		Queued: o.cfg.Shared.Pacer.Queued(), MaxQueue: o.cfg.MaxQueue, MaxWait: o.cfg.MaxWait.String()}
	if n, err := o.cfg.Shared.Pacer.Usage(ctx, lim); err != nil {
		st.Limiter.Error = o.scrub.Scrub(err.Error())
	} else {
		st.Limiter.Used = n
	}
	return st
}
