package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/store"
)

func init() {
	caddy.RegisterModule(Webhook{})
}

// Webhook receives Modulus Labs' payment webhooks on a public HTTPS route
// and hands them to the app: it checks the source address, decrypts and
// validates the payload, de-duplicates it, writes it to a durable spool,
// acknowledges, and delivers the clean JSON to forward_to with retries,
// signatures and dead letters. It is a terminal handler.
type Webhook struct {
	// DecryptionKeys are the keys webhook tokens may be encrypted with,
	// tried in order (rotation, and the provider's secret-key-or-encryption-key
	// ambiguity). Each is a {env.NAME} or {file.PATH} placeholder. Required.
	DecryptionKeys []string `json:"decryption_keys,omitempty"`

	// KeyEncoding says how each key string becomes 32 bytes: utf8
	// (default), base64, base64url or hex.
	KeyEncoding string `json:"key_encoding,omitempty"`

	// AllowIPs are the CIDRs or addresses webhooks may come from (the
	// provider's Webhook IP Whitelist), checked against Caddy's resolved
	// client IP; "any" must be written to allow all. Required. Placeholders
	// ({env.NAME}) are resolved at provision; a value may expand to several
	// space-separated entries.
	AllowIPs []string `json:"allow_ips,omitempty"`

	// ActivationCodes, when set, are the values the activation-code header
	// must carry. Placeholders ({env.NAME}) are resolved at provision, each
	// value to one code.
	ActivationCodes []string `json:"activation_codes,omitempty"`

	// ForwardTo is the app's URL that receives the decrypted events.
	// Required. Placeholders ({env.NAME}) are resolved at provision.
	ForwardTo string `json:"forward_to,omitempty"`

	// ForwardTimeout bounds one delivery attempt; 10s by default.
	ForwardTimeout caddy.Duration `json:"forward_timeout,omitempty"`

	// SignSecret, when set, signs deliveries (Webhook-Signature, the
	// Standard Webhooks scheme): "whsec_" + base64, or any string of at
	// least 32 bytes; a {env.NAME} or {file.PATH} placeholder. For a
	// rotation, list the secrets in SignSecrets instead.
	SignSecret string `json:"sign_secret,omitempty"`

	// SignSecrets are several signing secrets, each in SignSecret's form:
	// every delivery then carries one signature per secret, in order, so an
	// app verifying with any one of them accepts it (a secret rotation).
	// Set SignSecret or SignSecrets, not both; a repeated sign_secret in the
	// Caddyfile adapts to this list.
	SignSecrets []string `json:"sign_secrets,omitempty"`

	// Spool is the spool file (bbolt); by default webhooks.spool in
	// qrphgate's folder of Caddy's data directory. A Redis URL puts it on
	// a Redis deployment that replicas share: any of them delivers what
	// one acknowledged, and the events a crashed one had claimed go to the
	// others. The URL is redis://host:port/db (one server),
	// redis-cluster://host:port,host:port,... (a Redis Cluster: a seed
	// list of its nodes) or redis-sentinel://host:port,host:port/MASTERNAME[/db]
	// (a primary watched by Sentinel: the sentinels' addresses), each
	// with a rediss form for TLS; see docs/managed-redis.md.
	Spool string `json:"spool,omitempty"`

	// Store, a Redis URL of any of the spool's forms, shares
	// de-duplication with the other replicas: a webhook one replica stored
	// is a duplicate for all. Unset, de-duplication lives in the spool (a
	// Redis spool shares it already).
	Store string `json:"store,omitempty"`

	// MinReplicas, with a Redis spool, holds the acknowledgement until the
	// event has reached that many replicas of the Redis primary (WAIT), so
	// that a failover promoting one of them keeps it. When they do not
	// confirm within MinReplicasTimeout, the event is taken back and the
	// webhook answered 503 spool_unavailable: the provider retries. 0 (the
	// default) acknowledges once the primary has the event; Redis
	// replicates asynchronously, so a failover can then lose an event
	// acknowledged within the replication lag (docs/managed-redis.md).
	MinReplicas int `json:"min_replicas,omitempty"`

	// MinReplicasTimeout bounds the wait for MinReplicas: 1s by default,
	// at most 5s (the provider gives up on an answer after 10 s).
	MinReplicasTimeout caddy.Duration `json:"min_replicas_timeout,omitempty"`

	// DedupeWindow is how long an event (action and reference, with the
	// merchant and the transaction id when the decrypted payload names
	// them) is remembered; 72h by default. The activation-code header is
	// not part of the key.
	DedupeWindow caddy.Duration `json:"dedupe_window,omitempty"`

	// RedeliverFor is how long an event is retried before it becomes a
	// dead letter; 72h by default.
	RedeliverFor caddy.Duration `json:"redeliver_for,omitempty"`

	// RetryBase is the ceiling of the first redelivery wait: full jitter
	// under a ceiling that doubles from RetryBase up to RetryMax; 2s by
	// default.
	RetryBase caddy.Duration `json:"retry_base,omitempty"`

	// RetryMax caps the redelivery wait's ceiling; 15m by default, and at
	// least RetryBase.
	RetryMax caddy.Duration `json:"retry_max,omitempty"`

	// DeliveredRetention keeps each delivered event in the spool's history
	// (encrypted at rest like the pending ones; listed by GET
	// /modulus/events, replayable with its original Webhook-Id) for this
	// long, then purges it; 7d by default. 0 removes an event as soon as
	// the app accepts it.
	DeliveredRetention *caddy.Duration `json:"delivered_retention,omitempty"`

	// DeadLetterRetention purges each dead letter this long after it was
	// dead-lettered; 30d by default. 0 keeps dead letters until they are
	// replayed.
	DeadLetterRetention *caddy.Duration `json:"dead_letter_retention,omitempty"`

	// MaxBody caps the request body in bytes; 64 KiB by default.
	MaxBody int64 `json:"max_body,omitempty"`

	// RateLimit caps the webhooks from all allowed addresses together,
	// "N/duration" in fixed windows; 10000/1m by default (see
	// docs/webhooks.md for why the defaults never refuse the provider's
	// own traffic). Counted on the Redis server of Store or of a Redis
	// Spool (shared by replicas), else in this process. Over it: 429
	// rate_limited with Retry-After.
	RateLimit string `json:"rate_limit,omitempty"`

	// RateLimitPerIP caps the webhooks from each address (each /64 for
	// IPv6), checked before RateLimit; 5000/1m by default.
	RateLimitPerIP string `json:"rate_limit_per_ip,omitempty"`

	// ReadTimeout bounds the arrival of the body once the checks before it
	// passed; 10s (the provider's answer deadline) by default. A sender
	// that trickles its body gets 408 request_timeout.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// ActionFields name the payload members that carry the action, tried in
	// order (default: action, webhookAction, status).
	ActionFields []string `json:"action_fields,omitempty"`

	// ReferenceFields name the payload members that carry the reference,
	// tried in order (default: referenceNumber, merchantReferenceNumber,
	// transactionId, id).
	ReferenceFields []string `json:"reference_fields,omitempty"`

	logger       *zap.Logger
	inbound      *inbound.Handler
	worker       *webhookWorker
	poolKey      string
	reg          *webhookReg
	storeRelease func() error // the pooled Redis of Store, when set
	limitRelease func() error // what the rate limiter holds (the pooled Redis of Store)
	redisDep     func()       // forgets that the webhooks depend on a Redis (readiness)
	warnOnce     *sync.Once   // set by Provision (the struct is copied by value before)
	clock        clock.Clock  // tests only: the pipeline's and a new worker's clock; nil is the real one
}

// CaddyModule returns the Caddy module information.
func (Webhook) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.modulus_webhook",
		New: func() caddy.Module { return new(Webhook) },
	}
}

// Provision resolves the secrets, opens (or joins) the spool and its
// delivery worker, registers its delivery settings for when the config
// starts, and builds the receiving pipeline.
func (h *Webhook) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.warnOnce = new(sync.Once)
	webhookMetricsOnce.Do(initWebhookMetrics)
	repl := caddy.NewReplacer()
	cfg, err := h.config(repl)
	if err != nil {
		return err
	}
	delivery, fingerprint, err := h.deliveryConfig(repl)
	if err != nil {
		return err
	}
	spec, err := h.spoolSpec(repl)
	if err != nil {
		return err
	}
	app, err := modulusApp(ctx)
	if err != nil {
		return err
	}
	delivery.Auditor = app.auditor()
	w, err := h.joinWorker(ctx, app, spec, fingerprint, delivery)
	if err != nil {
		return err
	}
	if cfg.Spool, cfg.Dedupe, err = h.stores(ctx, repl, w); err != nil {
		return err
	}
	app.useForExpiryEvents(w.deliverer) // the ledger's QRPH_EXPIRED events go through this spool
	if rs, ok := w.spool.(redisSpool); ok {
		if h.redisDep == nil {
			h.redisDep = dependOnRedis(rs.Store())
		}
		app.sharedByReplicas("modulus_webhook's spool")
	} else if h.Store != "" {
		app.sharedByReplicas("modulus_webhook's store")
	}
	if cfg.Limiter, h.limitRelease, err = h.webhookLimiter(ctx, repl, w); err != nil {
		return err
	}
	cfg.OnAccepted = w.deliverer.Wake
	cfg.Auditor = app.auditor()
	cfg.Ledger = app.inboundLedger()
	h.inbound, err = inbound.New(cfg)
	return err
}

// config turns the options that shape the receiving pipeline into its
// configuration: every option's rule (webhookRules, the same the
// Caddyfile applies) first, then the keys resolved and the placeholders
// expanded. The spool, de-duplication, limiter and app hooks are
// Provision's.
func (h *Webhook) config(repl *caddy.Replacer) (inbound.Config, error) {
	cfg := inbound.Config{
		MaxBody:         h.maxBody(),
		DedupeWindow:    time.Duration(h.DedupeWindow), // zero: the pipeline's default
		ActionFields:    h.ActionFields,
		ReferenceFields: h.ReferenceFields,
		Clock:           h.clock, // nil: the real clock
		Logger:          h.logger,
		Observer:        webhookMetrics{},
		ReadTimeout:     time.Duration(h.ReadTimeout),
	}
	if err := checkRules(webhookRules, h); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Keyring, err = h.keyring(repl); err != nil {
		return cfg, err
	}
	if cfg.AllowIPs, err = h.allowlist(repl); err != nil {
		return cfg, err
	}
	if cfg.AllowIPs.AllowsAny() {
		h.logger.Warn("allow_ips is any: webhooks are accepted from every address; set the provider's Webhook IP Whitelist in production")
	}
	if cfg.ActivationCodes, err = h.activationCodes(repl); err != nil {
		return cfg, err
	}
	cfg.RateLimit, cfg.RateLimitPerIP, err = h.webhookLimits()
	return cfg, err
}

// joinWorker opens (or joins) the delivery worker of the spool spec and
// registers this handler's delivery settings with it: they take effect
// once the config runs (see webhookWorker.activate), never for one Caddy
// refuses, and the running config's stay (or come back) when it is
// refused.
func (h *Webhook) joinWorker(ctx caddy.Context, app *App, spec, fingerprint string, delivery inbound.DeliveryConfig) (*webhookWorker, error) {
	if err := checkMinReplicas(h.MinReplicas, time.Duration(h.MinReplicasTimeout), spec); err != nil {
		return nil, err
	}
	if !strings.Contains(spec, "://") {
		if err := checkOwnFile("spool", fileRoleSpool, spec); err != nil {
			return nil, err
		}
	}
	w, key, err := acquireWebhookWorker(spec, h.logger, h.clock)
	if err != nil {
		return nil, err
	}
	h.worker, h.poolKey = w, key
	if h.reg, err = w.register(ctx.Done(), fingerprint, delivery); err != nil {
		return nil, err
	}
	if app == nil {
		// A handler provisioned on its own (unit tests): no lifecycle, so
		// its settings take effect at once.
		w.activate(h.reg, true)
		return w, nil
	}
	reg := h.reg
	app.OnStart(func() { w.activate(reg, false) })
	app.OnStop(func() { w.retire(reg) })
	return w, nil
}

// stores returns the spool and de-duplication set the pipeline writes to:
// the worker's, shared through Redis with Store (sharedDedupe), and
// waiting for min_replicas on a Redis spool (replicated).
func (h *Webhook) stores(ctx caddy.Context, repl *caddy.Replacer, w *webhookWorker) (store.Spool, store.Dedupe, error) {
	spool, dedupe, err := h.sharedDedupe(ctx, repl, w)
	if err != nil {
		return nil, nil, err
	}
	return h.replicated(spool, dedupe)
}

func (h *Webhook) maxBody() int64 {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return inbound.DefaultMaxWebhookBody
}

// keyring resolves and decodes the decryption keys; they are named
// decryption_key[1], [2]... in logs.
func (h *Webhook) keyring(repl *caddy.Replacer) (*crypto.Keyring, error) {
	enc, err := crypto.ParseEncoding(h.KeyEncoding)
	if err != nil {
		return nil, fmt.Errorf("key_encoding: %w", err)
	}
	if len(h.DecryptionKeys) == 0 {
		return nil, errors.New("decryption_key is required")
	}
	keys := make([]crypto.Key, 0, len(h.DecryptionKeys))
	for i, raw := range h.DecryptionKeys {
		name := listName("decryption_key", i)
		material, _, err := resolveSecret(repl, name, raw, false)
		if err != nil {
			return nil, err
		}
		k, err := crypto.NewKey(name, material, enc)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return crypto.NewKeyring(int(h.maxBody()), keys...)
}

// allowlist resolves the placeholders in allow_ips and parses the result.
// A value may expand to several addresses or CIDRs separated by spaces (an
// {env.NAME} holding the provider's whole Webhook IP Whitelist).
func (h *Webhook) allowlist(repl *caddy.Replacer) (policy.IPAllowlist, error) {
	entries := make([]string, 0, len(h.AllowIPs))
	for _, raw := range h.AllowIPs {
		v, err := resolveOption(repl, "allow_ips", raw)
		if err != nil {
			return policy.IPAllowlist{}, err
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return policy.IPAllowlist{}, fmt.Errorf("allow_ips: %s resolves to no address", raw)
		}
		entries = append(entries, fields...)
	}
	return policy.ParseIPAllowlist(entries)
}

// activationCodes resolves the placeholders in activation_codes and
// applies the option's rule (checkHeaderCode) to each resulting code.
// Errors name the code by its position, never its value.
func (h *Webhook) activationCodes(repl *caddy.Replacer) ([]string, error) {
	codes := make([]string, 0, len(h.ActivationCodes))
	for i, raw := range h.ActivationCodes {
		name := listName("activation_codes", i)
		c, err := resolveOption(repl, name, raw)
		if err != nil {
			return nil, err
		}
		if err := checkHeaderCode(name, c); err != nil {
			return nil, err
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// resolveOption expands the placeholders of a value that is not a secret
// ({env.NAME}, {file.PATH} and Caddy's other global placeholders) when the
// handler is provisioned. A placeholder that is unknown at that time (a
// request placeholder), unset or empty is an error naming the option and
// the placeholder, never a value.
func resolveOption(repl *caddy.Replacer, field, raw string) (string, error) {
	v, err := repl.ReplaceFunc(raw, func(key string, val any) (any, error) {
		if caddy.ToString(val) == "" {
			return nil, fmt.Errorf("{%s} is empty, unset or not known at start-up", key)
		}
		return val, nil
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return v, nil
}

// deliveryConfig builds the worker's configuration and a fingerprint of it
// (the signing secrets only as a digest) to tell two handlers sharing a
// spool apart.
func (h *Webhook) deliveryConfig(repl *caddy.Replacer) (inbound.DeliveryConfig, string, error) {
	forwardTo := h.ForwardTo
	if forwardTo != "" {
		var err error
		if forwardTo, err = resolveOption(repl, "forward_to", forwardTo); err != nil {
			return inbound.DeliveryConfig{}, "", err
		}
	}
	u, err := parseForwardTo(forwardTo)
	if err != nil {
		return inbound.DeliveryConfig{}, "", err
	}
	cfg := inbound.DeliveryConfig{
		URL:                 u,
		Timeout:             time.Duration(h.ForwardTimeout),
		RedeliverFor:        time.Duration(h.RedeliverFor),
		Backoff:             proxy.Backoff{Base: time.Duration(h.RetryBase), Max: time.Duration(h.RetryMax)},
		Logger:              h.logger,
		DeliveredRetention:  durationOr(h.DeliveredRetention, defaultDeliveredRetention),
		DeadLetterRetention: durationOr(h.DeadLetterRetention, defaultDeadLetterRetention),
	}
	signer, secretDigest, err := h.signer(repl)
	if err != nil {
		return inbound.DeliveryConfig{}, "", err
	}
	cfg.Signer = signer
	fp := fmt.Sprintf("%s|%v|%v|%v|%v|%s|%v|%v", u, cfg.Timeout, cfg.RedeliverFor, cfg.Backoff.Base, cfg.Backoff.Max, secretDigest,
		cfg.DeliveredRetention, cfg.DeadLetterRetention)
	return cfg, fp, nil
}

// The history's retention defaults.
const (
	defaultDeliveredRetention  = 7 * 24 * time.Hour
	defaultDeadLetterRetention = 30 * 24 * time.Hour
)

// durationOr is d when set (zero included), else def.
func durationOr(d *caddy.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

// parseForwardTo accepts an absolute http or https URL without
// credentials or fragment (the app is usually on loopback or a private
// network, so plain http is allowed).
func parseForwardTo(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("forward_to is required")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, errors.New("forward_to must be an absolute http:// or https:// URL")
	case u.User != nil:
		return nil, errors.New("forward_to must not carry credentials (use sign_secret to authenticate deliveries)")
	case u.Fragment != "":
		return nil, errors.New("forward_to must not have a fragment")
	}
	return u, nil
}

// spoolSpec returns where the spool lives: an absolute file path (the
// default under Caddy's data directory), or a URL for back ends that
// register an opener.
func (h *Webhook) spoolSpec(repl *caddy.Replacer) (string, error) {
	if strings.Contains(h.Spool, "://") {
		return resolveRedisURL(repl, h.Spool), nil
	}
	spec := repl.ReplaceKnown(h.Spool, "")
	if spec == "" {
		return filepath.Join(caddy.AppDataDir(), "qrphgate", "webhooks.spool"), nil
	}
	if strings.Contains(spec, "://") {
		return spec, nil
	}
	abs, err := filepath.Abs(spec)
	if err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	return abs, nil
}

// replicated wraps a Redis spool so that its Put waits for MinReplicas
// replicas; other spools (and MinReplicas 0) are returned as they are.
func (h *Webhook) replicated(spool store.Spool, dedupe store.Dedupe) (store.Spool, store.Dedupe, error) {
	if h.MinReplicas == 0 {
		return spool, dedupe, nil
	}
	rs, ok := spool.(redisSpool)
	if !ok {
		return nil, nil, errors.New("min_replicas needs a Redis spool: a file spool has no replicas")
	}
	timeout := time.Duration(h.MinReplicasTimeout)
	if timeout == 0 {
		timeout = defaultMinReplicasTimeout
	}
	v, err := rs.WithMinReplicas(h.MinReplicas, timeout)
	if err != nil {
		return nil, nil, err
	}
	return v, v, nil
}

// sharedDedupe returns the spool and de-duplication set the pipeline uses:
// the worker's own, or, with Store, the spool wrapped so that its
// de-duplication is shared through Redis.
func (h *Webhook) sharedDedupe(ctx caddy.Context, repl *caddy.Replacer, w *webhookWorker) (store.Spool, store.Dedupe, error) {
	if h.Store == "" {
		return w.spool, w.dedupe, nil
	}
	r, release, err := acquireRedis(ctx, resolveRedisURL(repl, h.Store))
	if err != nil {
		return nil, nil, err
	}
	h.storeRelease = release
	h.redisDep = dependOnRedis(r) // de-duplication, and a Redis spool, are on it
	if rs, ok := w.spool.(redisSpool); ok {
		if rs.Store() != r {
			return nil, nil, errors.New("store: a Redis spool de-duplicates on its own server; store must name the same server or be left out")
		}
		return w.spool, w.dedupe, nil
	}
	sd := store.NewSharedDedupe(w.spool, r, h.logger)
	return sd, sd, nil
}

// Cleanup releases this handler's hold on the shared worker; the worker
// (and its spool) stops when the last handler using it is gone. It
// tolerates a Provision that failed half-way.
func (h *Webhook) Cleanup() error {
	if h.redisDep != nil {
		h.redisDep()
		h.redisDep = nil
	}
	var errStore error
	if h.storeRelease != nil {
		errStore = h.storeRelease()
		h.storeRelease = nil
	}
	if h.limitRelease != nil {
		errStore = errors.Join(errStore, h.limitRelease())
		h.limitRelease = nil
	}
	if h.worker == nil {
		return errStore
	}
	if h.reg != nil {
		h.worker.unregister(h.reg)
		h.reg = nil
	}
	h.worker = nil
	_, err := webhookWorkers.Delete(h.poolKey)
	return errors.Join(err, errStore)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It answers every
// request itself (JSON errors included) and never calls next.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.inbound.ServeWebhook(w, r, h.clientIP(r))
	return nil
}

// clientIP is the address Caddy resolved for the request: the peer, or,
// when the peer is a trusted proxy, the address from client_ip_headers.
// A resolution through trusted proxies outside strict mode is refused
// (an invalid address): there the leftmost header value wins, and the
// sender can choose it.
func (h *Webhook) clientIP(r *http.Request) netip.Addr {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.TrustedProxiesStrict == 0 {
			h.warnOnce.Do(func() {
				h.logger.Error("webhook came through a trusted proxy but the server lacks trusted_proxies_strict; " +
					"refusing it, since the client could choose its address. Add trusted_proxies_strict to the servers options.")
			})
			return netip.Addr{}
		}
	}
	return addr
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Webhook)(nil)
	_ caddy.CleanerUpper          = (*Webhook)(nil)
	_ caddyhttp.MiddlewareHandler = (*Webhook)(nil)
)
