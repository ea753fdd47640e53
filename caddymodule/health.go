package caddymodule

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy/health"
)

func init() {
	caddy.RegisterModule(Health{})
}

// Defaults of modulus_health.
const (
	defaultHealthInterval = 60 * time.Second
	defaultCheckInterval  = 10 * time.Second
	defaultCheckTimeout   = 5 * time.Second
	defaultCertWarn       = 14 * 24 * time.Hour
)

// Health answers readiness probes (http.handlers.modulus_health) for the
// qrphgate handlers of its process: {"status":"ok|degraded|unavailable",
// "checks":{...}}, 200 while ok or degraded, 503 when unavailable. It
// checks the webhook spools (a timed durable write), the Redis stores
// (PING), the credentials fuse and circuit breakers of every modulus_api,
// the provider's /ping on both APIs (in the background, every
// health_interval, never per probe) and the webhook site's certificate.
// Each check shows its last result and its age. It is a terminal handler;
// put it on an operator-only listener.
type Health struct {
	// HealthInterval is how often the provider's GET /ping is called on
	// each configured API; 60s by default (the provider's advice). Probes
	// read the last answer, never trigger a call.
	HealthInterval caddy.Duration `json:"health_interval,omitempty"`

	// CheckInterval is how often the spools and the Redis stores are
	// probed; 10s by default.
	CheckInterval caddy.Duration `json:"check_interval,omitempty"`

	// CheckTimeout bounds a spool or store probe (and a health ping's wait
	// for a rate slot); 5s by default. A probe without an answer by then
	// fails.
	CheckTimeout caddy.Duration `json:"check_timeout,omitempty"`

	// CertWarn is how long the webhook site's certificate must still be
	// valid; 14 days by default. Less, or none at all, is degraded;
	// expired or not yet valid is unavailable.
	CertWarn caddy.Duration `json:"cert_warn,omitempty"`

	// CertNames are the names whose certificates are checked; by default
	// the host names of the HTTPS sites that serve a modulus_webhook (set
	// them for a site without a host name, such as https://:8443 with a
	// certificate from files). A plain-HTTP site has none of its own.
	CertNames []string `json:"cert_names,omitempty"`

	logger    *zap.Logger
	poller    *healthPoller
	pollerKey string
	live      *healthLive                      // set by Provision (the struct is copied by value before)
	clock     clock.Clock                      // tests only: the poller's and the report's clock
	lookup    func(string) []*x509.Certificate // tests only: nil is Caddy's certificate cache
}

// healthLive is what a handler sets when its config starts.
type healthLive struct {
	names       atomic.Pointer[[]string] // the checked certificate names
	mu          sync.Mutex               // guards releaseCert
	releaseCert func()
}

// CaddyModule returns the Caddy module information.
func (Health) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.modulus_health",
		New: func() caddy.Module { return new(Health) },
	}
}

// Provision applies the option rules and joins (or starts) the pooled
// poller. The certificate names are found when the config starts, once
// every site is provisioned.
func (h *Health) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := checkRules(healthRules, h); err != nil {
		return err
	}
	healthMetricsOnce.Do(initHealthMetrics)
	var err error
	if h.poller, h.pollerKey, err = acquireHealthPoller(h.settings(), h.clock); err != nil {
		return err
	}
	app, err := modulusApp(ctx)
	if err != nil {
		return err
	}
	h.live = new(healthLive)
	onConfigStart(app, func() {
		names := h.CertNames
		if len(names) == 0 && app != nil {
			names = webhookSiteNames(ctx)
			if len(names) == 0 {
				h.logger.Info("no modulus_webhook site with a host name: the certificate check is off (set cert_names to check one)")
			}
		}
		h.live.names.Store(&names)
		release := retainCertGauges(names, h.certificates)
		h.live.mu.Lock()
		h.live.releaseCert = release
		h.live.mu.Unlock()
		readyHealth.Store(h)
		h.poller.Kick()
	})
	return nil
}

func (h *Health) settings() healthSettings {
	or := func(d caddy.Duration, def time.Duration) time.Duration {
		if d > 0 {
			return time.Duration(d)
		}
		return def
	}
	return healthSettings{
		checkEvery: or(h.CheckInterval, defaultCheckInterval),
		pingEvery:  or(h.HealthInterval, defaultHealthInterval),
		timeout:    or(h.CheckTimeout, defaultCheckTimeout),
	}
}

func (h *Health) now() time.Time {
	if h.clock != nil {
		return h.clock.Now()
	}
	return time.Now()
}

func (h *Health) certificates(name string) []*x509.Certificate {
	if h.lookup != nil {
		return h.lookup(name)
	}
	return cachedCertificates(name)
}

// report gathers every check's last result.
func (h *Health) report() health.Report {
	now := h.now()
	results := h.poller.Results()
	engineChecks(now, results)
	warn := defaultCertWarn
	if h.CertWarn > 0 {
		warn = time.Duration(h.CertWarn)
	}
	if names := h.live.names.Load(); names != nil {
		for _, n := range *names {
			results["certificate:"+n] = certificateCheck(h.certificates, n, warn, now)
		}
	}
	return health.NewReport(now, results)
}

// ServeHTTP answers GET and HEAD with the report.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	rep := h.report()
	body, err := json.Marshal(rep)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(rep.HTTPStatus())
	if r.Method == http.MethodGet {
		_, _ = w.Write(append(body, '\n'))
	}
	return nil
}

// Cleanup releases the poller (it stops with its last handler) and the
// certificate series; it tolerates a half-provisioned handler.
func (h *Health) Cleanup() error {
	readyHealth.CompareAndSwap(h, nil)
	if h.live != nil {
		h.live.mu.Lock()
		release := h.live.releaseCert
		h.live.releaseCert = nil
		h.live.mu.Unlock()
		if release != nil {
			release()
		}
	}
	if h.pollerKey == "" {
		return nil
	}
	// The poller stays readable: a request still in flight may read it.
	_, err := healthPollers.Delete(h.pollerKey)
	h.pollerKey = ""
	return err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Health)(nil)
	_ caddy.CleanerUpper          = (*Health)(nil)
	_ caddyhttp.MiddlewareHandler = (*Health)(nil)
)
