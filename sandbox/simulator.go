package sandbox

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
)

// DefaultRetryIntervals is the provider's documented schedule: up to 4
// delivery attempts, 15 minutes apart (the first attempt is immediate).
var DefaultRetryIntervals = []time.Duration{15 * time.Minute, 15 * time.Minute, 15 * time.Minute}

// DeliveryTimeout is how long a callback has to answer; the provider asks
// for an answer within 10 seconds.
const DeliveryTimeout = 10 * time.Second

// Config configures a Simulator. SecretKey and EncryptionKey are required.
type Config struct {
	// SecretKey is the account's secret key: the Basic-auth username the
	// QR and webhooks APIs expect (with an empty password).
	SecretKey string

	// EncryptionKey opens request tokens and seals answer tokens and
	// webhook payloads (the provider's webhook docs disagree on secret key
	// vs encryption key; the simulator uses the encryption key, as the
	// webhooks security page does).
	EncryptionKey crypto.Key

	// ActivationCodes are the merchants of this account; create-QR refuses
	// any other. Empty accepts every well-formed code.
	ActivationCodes []string

	// RateLimit applies separately to the QR API and to the webhooks API;
	// zero means the policy's sandbox limit (100/1m).
	RateLimit policy.RateLimit

	// RetryIntervals are the waits between delivery attempts; nil means
	// DefaultRetryIntervals. An empty non-nil slice means one attempt only.
	RetryIntervals []time.Duration

	// Latency delays every API answer (fault knob).
	Latency time.Duration

	// ErrorRate is the share of API calls, in [0, 1], answered with a
	// simulated 500 before doing anything (fault knob).
	ErrorRate float64

	// WebhookSource is the local IP address webhook deliveries are sent
	// from, so that a receiver's source-IP allowlist can be exercised. If
	// it cannot be bound, deliveries use the default and a warning is
	// logged.
	WebhookSource string

	// InboxSignSecret, when set, makes the demo inbox verify the
	// Webhook-Signature header (Standard Webhooks, v1) and refuse
	// deliveries without a valid one. "whsec_" + base64 or raw text.
	InboxSignSecret string

	// Callbacks are registered at start-up for every webhook action, as
	// POST /v1/webhooks calls would register them, so that a fresh
	// simulator delivers without a registration step (the quickstart).
	// Already registered ones are left as they are.
	Callbacks []string

	// Policy supplies the validation rules; nil means policy.Default().
	Policy *policy.Policy

	// Logger receives operational logs; never keys, tokens or bodies.
	Logger *zap.Logger

	// Random returns a number in [0, 1) for ErrorRate; nil means
	// math/rand/v2.
	Random func() float64

	// RootCAs, when set, is called before each delivery for the roots
	// that HTTPS callbacks are verified against (nil result: system
	// roots). caddymodule adds Caddy's internal CA so that a `tls
	// internal` receiver in the same process is trusted.
	RootCAs func() *x509.CertPool

	// Observer receives API answers and delivery attempts (caddymodule
	// turns them into metrics); NopObserver when nil.
	Observer Observer

	// LedgerLookup, when set, returns what the gateway's payments ledger
	// says about the QRs of ids (those it has), for the page. The
	// simulator does not know the ledger: caddymodule wires it in.
	LedgerLookup func(ctx context.Context, ids []string) (map[string]LedgerView, error)
}

// Simulator is the provider simulator's HTTP handler. It keeps its state
// in a Store, which several Simulators (a config reload, two listeners) may
// share.
type Simulator struct {
	cfg         Config
	store       *Store
	clk         clock.Clock
	log         *zap.Logger
	pol         *policy.Policy
	env         policy.Environment
	keyring     *crypto.Keyring
	sealer      *crypto.Encrypter
	rate        policy.RateLimit
	retries     []time.Duration
	source      netip.Addr // invalid when deliveries use the default source
	sender      *sender
	inboxSigner *crypto.WebhookSigner
	mux         *http.ServeMux
	random      func() float64
	validity    time.Duration
	merchants   []string
}

// New checks cfg and returns a Simulator keeping its state in store.
func New(cfg Config, store *Store) (*Simulator, error) {
	if store == nil {
		return nil, errors.New("sandbox: a Store is required")
	}
	s := &Simulator{cfg: cfg, store: store, clk: store.clk, log: cfg.Logger, pol: cfg.Policy, random: cfg.Random}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.cfg.Observer == nil {
		s.cfg.Observer = NopObserver{}
	}
	if s.pol == nil {
		s.pol = policy.Default()
	}
	if s.random == nil {
		s.random = rand.Float64
	}
	var err error
	if s.env, err = s.pol.Environment(policy.Sandbox); err != nil {
		return nil, err
	}
	warning, err := s.pol.CheckSecretKey(s.env, cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		s.log.Warn(warning)
	}
	if cfg.EncryptionKey.IsZero() {
		return nil, errors.New("encryption_key is required")
	}
	if s.keyring, err = crypto.NewKeyring(0, cfg.EncryptionKey); err != nil {
		return nil, err
	}
	if s.sealer, err = crypto.NewEncrypter(cfg.EncryptionKey); err != nil {
		return nil, err
	}
	for i, code := range cfg.ActivationCodes {
		if err := s.pol.CheckActivationCode(fmt.Sprintf("activation_codes[%d]", i), code); err != nil {
			return nil, err
		}
	}
	s.merchants = slices.Clone(cfg.ActivationCodes)
	s.rate = cfg.RateLimit
	if s.rate.Requests == 0 {
		s.rate = s.env.RateLimit
	}
	if s.rate.Requests < 0 || s.rate.Period <= 0 {
		return nil, errors.New("rate_limit must be a positive N/duration")
	}
	s.retries = cfg.RetryIntervals
	if s.retries == nil {
		s.retries = DefaultRetryIntervals
	}
	for _, d := range s.retries {
		if d <= 0 {
			return nil, errors.New("retry_intervals must be positive durations")
		}
	}
	if cfg.Latency < 0 {
		return nil, errors.New("latency must not be negative")
	}
	if cfg.ErrorRate < 0 || cfg.ErrorRate > 1 {
		return nil, errors.New("error_rate must be between 0 and 1")
	}
	if cfg.WebhookSource != "" {
		if s.source, err = bindableSource(cfg.WebhookSource); err != nil {
			if errors.Is(err, errNotBindable) {
				s.log.Warn("webhook_source cannot be bound here; deliveries use the default source address",
					zap.String("webhook_source", cfg.WebhookSource), zap.Error(err))
			} else {
				return nil, err
			}
		}
	}
	if cfg.InboxSignSecret != "" {
		if s.inboxSigner, err = crypto.NewWebhookSigner("inbox_sign_secret", cfg.InboxSignSecret); err != nil {
			return nil, err
		}
	}
	for i, u := range cfg.Callbacks {
		if msg := checkCallbackURL(u); msg != "" {
			return nil, fmt.Errorf("callbacks[%d]: %s", i, msg)
		}
	}
	s.validity = time.Duration(s.pol.QR.Validity)
	s.sender = newSender(s.source, cfg.RootCAs)
	s.mux = s.routes()
	if err := s.store.preRegister(cfg.Callbacks, s.pol.Webhooks.Actions, s.clk.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

var errNotBindable = errors.New("address not available on this machine")

// bindableSource parses an IP literal and checks that this machine can send
// from it (127.0.0.2 works on Linux out of the box, not on macOS).
func bindableSource(raw string) (netip.Addr, error) {
	a, err := netip.ParseAddr(raw)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errors.New("webhook_source must be an IP address such as 127.0.0.2")
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %v", errNotBindable, err)
	}
	_ = l.Close()
	return a, nil
}

// WebhookSource is the address deliveries are sent from, or "" for the
// system's choice.
func (s *Simulator) WebhookSource() string {
	if !s.source.IsValid() {
		return ""
	}
	return s.source.String()
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Simulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	// The provider's APIs. A path without a method is the fallback that
	// answers 405 in the provider's error format.
	m.Handle("GET /ping", s.api("ping", "", false, http.HandlerFunc(s.ping)))
	m.Handle("HEAD /ping", s.api("ping", "", false, http.HandlerFunc(s.ping)))
	m.Handle("POST /v1/pay/qr", s.api("create_qr", "qr", true, http.HandlerFunc(s.createQR)))
	m.Handle("GET /v1/webhooks", s.api("webhooks_list", "webhooks", true, http.HandlerFunc(s.listWebhooks)))
	m.Handle("POST /v1/webhooks", s.api("webhooks_create", "webhooks", true, http.HandlerFunc(s.createWebhook)))
	m.Handle("PUT /v1/webhooks/{id}", s.api("webhooks_update", "webhooks", true, http.HandlerFunc(s.updateWebhook)))
	m.Handle("DELETE /v1/webhooks/{id}", s.api("webhooks_delete", "webhooks", true, http.HandlerFunc(s.deleteWebhook)))
	m.Handle("POST /v1/webhooks/qrph/simulate", s.api("simulate", "webhooks", true, http.HandlerFunc(s.simulate)))
	for _, p := range []string{"/ping", "/v1/pay/qr", "/v1/webhooks", "/v1/webhooks/{id}", "/v1/webhooks/qrph/simulate"} {
		m.HandleFunc(p, methodNotAllowed)
	}

	// The web page, its JSON and the demo inbox.
	m.HandleFunc("GET /{$}", redirectToPage)
	m.HandleFunc("GET /sandbox", redirectToPage)
	m.HandleFunc("GET /sandbox/{$}", s.page)
	m.HandleFunc("GET /sandbox/assets/{name}", s.asset)
	m.HandleFunc("GET /sandbox/api/state", s.state)
	m.HandleFunc("GET /sandbox/qr/{file}", s.qrImage)
	m.HandleFunc("POST /sandbox/qr", s.createFromPage)
	m.HandleFunc("POST /sandbox/qr/{id}/pay", s.payButton(UseCaseSuccess))
	m.HandleFunc("POST /sandbox/qr/{id}/decline", s.payButton(UseCaseDeclined))
	m.HandleFunc("GET /sandbox/inbox", s.listInbox)
	m.HandleFunc("POST /sandbox/inbox", s.receiveInbox)
	m.HandleFunc("DELETE /sandbox/inbox", s.clearInbox)
	m.HandleFunc("/sandbox/", methodNotAllowedOrNotFound)
	m.HandleFunc("/", methodNotAllowedOrNotFound)
	return m
}

func redirectToPage(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/sandbox/", http.StatusFound)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method "+r.Method+" is not allowed here")
}

func methodNotAllowedOrNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, CodeRouteNotFound, "no such endpoint")
}

// api wraps a provider endpoint with what the provider does before the
// endpoint itself, in order: the rate limit (window "" means none), the
// latency and error-rate fault knobs, and Basic authentication.
func (s *Simulator) api(endpoint, window string, auth bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			s.cfg.Observer.Request(endpoint, rec.status)
		}()
		if window != "" {
			// The strictest reading of "100 requests per minute": an exact
			// sliding window, so a client that passes the simulator passes
			// any coarser provider-side counter too.
			g, _ := s.store.budget.Take(r.Context(), window, s.rate.Requests, s.rate.Period)
			if !g.OK {
				secs := int((g.RetryAfter + time.Second - 1) / time.Second)
				rec.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
				writeError(rec, http.StatusTooManyRequests, CodeRateLimited,
					fmt.Sprintf("Rate limit of %s exceeded", s.rate))
				return
			}
		}
		if s.cfg.Latency > 0 {
			if err := clock.Sleep(r.Context(), s.clk, s.cfg.Latency); err != nil {
				return // the caller went away
			}
		}
		if s.cfg.ErrorRate > 0 && s.random() < s.cfg.ErrorRate {
			writeError(rec, http.StatusInternalServerError, CodeSimulatedFault, "Internal server error (simulated by error_rate)")
			return
		}
		if auth && !s.authorized(r) {
			if window == "webhooks" {
				writeError(rec, http.StatusUnauthorized, CodeWebhookAuth, MessageWebhookAuth)
			} else {
				writeError(rec, http.StatusUnauthorized, CodeInvalidAPIKey, MessageInvalidAPIKey)
			}
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// authorized checks Basic auth: the secret key as username and an empty
// password, as the provider documents.
func (s *Simulator) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || pass != "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.SecretKey)) == 1
}

func (s *Simulator) ping(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte("Pong!"))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
