package caddymodule

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

// liveTimeout bounds each online check.
const liveTimeout = 30 * time.Second

// engine builds preflight's own copy of a modulus_api's outbound engine:
// the config's credentials, upstreams and policy, a memory store, and no
// retries (a rejected key is never tried twice: the provider locks
// accounts after repeated failures). It is the gateway's code, so the
// calls are the gateway's calls.
func (a *pfAPI) engine() (*outbound.Handler, func(), error) { return a.engineWith(nil) }

// engineWith is engine recording created QRs in l (nil: nowhere).
func (a *pfAPI) engineWith(l outbound.Ledger) (*outbound.Handler, func(), error) {
	cfg := a.cfg
	cfg.Ledger = l
	mem := store.NewMemory(nil)
	shared, err := outbound.NewShared(outbound.SharedOptions{
		Budget: mem, BudgetKey: outbound.BudgetKey(cfg.Environment.Name, outbound.AccountID(cfg.SecretKey.Reveal())),
		Breaker: outbound.DefaultBreakerSettings,
	})
	if err != nil {
		return nil, nil, err
	}
	cfg.Budget, cfg.Idempotency, cfg.StoreKind, cfg.Shared = mem, mem, "memory", shared
	cfg.Retries = 0
	cfg.Logger = nopLogger
	h, err := outbound.New(cfg)
	if err != nil {
		shared.Close()
		return nil, nil, err
	}
	return h, shared.Close, nil
}

// checkLive runs the online checks: each modulus_api's two provider APIs
// answer /ping, its credentials work, the webhooks are registered for
// each modulus_webhook's public URL, and that site's certificate is good.
func (run *pfRun) checkLive(ctx context.Context) {
	var regs []preflight.Registration
	listed, apiBase := false, ""
	actions := policy.Default().Webhooks.Actions
	for _, a := range run.apis {
		if a.m == nil || a.err != nil {
			run.r.Add("live.ping_qr", a.subject, preflight.Warning("not checked: the handler does not provision", "fix config.provision first"))
			continue
		}
		actions = a.cfg.Policy.Webhooks.Actions
		eng, closeEngine, err := a.engine()
		if err != nil {
			run.r.Add("live.ping_qr", a.subject, preflight.Failure("building the outbound engine: "+err.Error(), "fix config.provision first"))
			continue
		}
		run.r.Add("live.ping_qr", a.subject, ping(ctx, eng, "qr", a.cfg.QRURL))
		run.r.Add("live.ping_webhooks", a.subject, ping(ctx, eng, "webhooks", a.cfg.WebhooksURL))
		v, list, rejected := credentials(ctx, eng)
		run.r.Add("live.credentials", a.subject, v)
		a.credentialsRejected = rejected
		if list != nil {
			regs = append(regs, list...)
			if !listed {
				listed, apiBase = true, a.site.baseURL()
			}
		}
		closeEngine()
	}
	for _, w := range run.webhooks {
		if w.m == nil {
			continue
		}
		run.checkRegistrations(w, regs, listed, apiBase, actions)
		run.checkCertificate(ctx, w)
	}
}

// ping is live.ping_qr and live.ping_webhooks: GET /ping on one API,
// through the engine's own Ping (modulus_health's).
func ping(ctx context.Context, eng *outbound.Handler, api string, base *url.URL) preflight.Verdict {
	if base == nil {
		return preflight.Warning("not checked: webhooks_url is not configured", "set webhooks_url from your onboarding email")
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	start := time.Now()
	took, err := eng.Ping(ctx, api, outbound.DefaultMaxWait)
	if err != nil {
		return preflight.Failure("GET "+base.String()+"/ping: "+err.Error(),
			"check that this host reaches "+base.Host+" (firewall, proxy, DNS) and the provider's status").Timed(time.Since(start))
	}
	return preflight.Pass(fmt.Sprintf("GET %s/ping answered in %s", base, preflight.FormatDuration(took))).Timed(took)
}

// credentials is live.credentials: one authenticated, harmless call (GET
// /v1/webhooks), never retried. It returns the registrations it listed,
// and whether the provider refused the credentials (401 or 403).
func credentials(ctx context.Context, eng *outbound.Handler) (v preflight.Verdict, regs []preflight.Registration, rejected bool) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	start := time.Now()
	rec := httptest.NewRecorder()
	eng.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/webhooks", nil))
	elapsed := time.Since(start)
	body := rec.Body.Bytes()
	switch rec.Code {
	case http.StatusOK:
		regs, err := preflight.ParseRegistrations(body)
		if err != nil {
			return preflight.Warning("the provider accepted the credentials, but "+err.Error(),
				"check webhooks_payload (plain or jwe) against what the provider answers").Timed(elapsed), nil, false
		}
		return preflight.Pass(fmt.Sprintf("the provider accepted the credentials (GET /v1/webhooks listed %d webhook(s) in %s)", len(regs), preflight.FormatDuration(elapsed))).Timed(elapsed), regs, false
	case http.StatusUnauthorized, http.StatusForbidden:
		return preflight.Failure("the provider refused the credentials: "+describeBody(rec.Code, body),
			"check secret_key (and that it belongs to this environment) with Modulus Labs; preflight made one call and did not retry, as repeated failures lock the account").Timed(elapsed), nil, true
	case http.StatusNotImplemented:
		return preflight.Warning("not checked: webhooks_url is not configured, and GET /v1/webhooks is the only harmless authenticated call",
			"set webhooks_url from your onboarding email").Timed(elapsed), nil, false
	}
	fix := "see the provider's answer"
	if rec.Code >= 500 {
		fix = "the provider, or the way to it, failed: see live.ping_qr and live.ping_webhooks"
	}
	return preflight.Failure("GET /v1/webhooks: "+describeBody(rec.Code, body), fix).Timed(elapsed), nil, false
}

// gatewayError is the gateway's JSON error body.
type gatewayError struct {
	Error struct {
		Code     string               `json:"code"`
		Message  string               `json:"message"`
		Upstream *proxy.UpstreamError `json:"upstream"`
	} `json:"error"`
}

// describeBody renders a gateway answer that is not a success: its status,
// code and message, and the provider's own status, code and text.
func describeBody(status int, body []byte) string {
	var e gatewayError
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return fmt.Sprintf("status %d", status)
	}
	return describeError(&proxy.Error{Status: status, Code: e.Error.Code, Message: e.Error.Message, Upstream: e.Error.Upstream})
}

func describeError(e *proxy.Error) string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	if u := e.Upstream; u != nil {
		s += fmt.Sprintf(" (provider: status %d", u.Status)
		if u.Code != "" {
			s += ", code " + u.Code
		}
		if u.Error != "" {
			s += ", " + fmt.Sprintf("%q", u.Error)
		}
		s += ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// checkRegistrations is live.webhook_registered: each action is registered
// and ENABLED for the site's public URL.
func (run *pfRun) checkRegistrations(w *pfWebhook, regs []preflight.Registration, listed bool, apiBase string, actions []string) {
	public := run.o.WebhookURL
	if public == "" {
		var err error
		if public, err = w.site.publicURL(); err != nil {
			run.r.Add("live.webhook_registered", w.subject, preflight.Warning("cannot tell the site's public URL ("+err.Error()+")",
				"pass --webhook-url https://your.host/webhooks/path"))
			return
		}
	}
	for _, action := range actions {
		subject := w.subject + " " + action
		if !listed {
			run.r.Add("live.webhook_registered", subject, preflight.Warning("not checked: no modulus_api could list the registrations (see live.credentials)",
				"fix live.credentials"))
			continue
		}
		run.r.Add("live.webhook_registered", subject, preflight.RegistrationVerdict(regs, public, action, apiBase))
	}
}

// checkCertificate is live.certificate: the webhook site's certificate as
// the provider gets it (by connecting), or else as Caddy stored or loads
// it.
func (run *pfRun) checkCertificate(ctx context.Context, w *pfWebhook) {
	if !w.h.server.known || !w.h.server.tls {
		return // webhook.tls says why
	}
	host, port := w.site.host, w.site.publicPort
	if run.o.WebhookURL != "" {
		if u, err := url.Parse(run.o.WebhookURL); err == nil && u.Hostname() != "" {
			host, port = u.Hostname(), u.Port()
			if port == "" {
				port = "443"
			}
		}
	}
	if port == "" {
		port = "443"
	}
	if host == "" || !w.site.named && run.o.WebhookURL == "" {
		run.r.Add("live.certificate", w.subject, preflight.Warning("cannot tell the site's host name", "pass --webhook-url https://your.host/webhooks/path"))
		return
	}
	opts := preflight.CertOptions{Host: host, Now: run.o.Now(), LocalRoots: run.localCARoots(ctx), Production: w.production}
	cctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	start := time.Now()
	chain, version, err := preflight.ProbeTLS(cctx, net.JoinHostPort(host, port), host)
	if err == nil {
		took := time.Since(start)
		// The first handshake offered every version and shows the one the
		// server prefers; a second, limited to TLS 1.1, shows whether it
		// would settle for less.
		legacy, lerr := preflight.ProbeLegacyTLS(cctx, net.JoinHostPort(host, port), host)
		run.r.Add("live.certificate", w.subject, preflight.Worst("",
			preflight.CertificateVerdict(chain, version, opts).Timed(took), preflight.LegacyTLSVerdict(legacy, lerr)))
		return
	}
	connErr := fmt.Sprintf("connecting to %s: %v", net.JoinHostPort(host, port), err)
	stored, where := run.storedCertificate(ctx, host)
	if stored == nil {
		run.r.Add("live.certificate", w.subject, preflight.Failure(connErr+"; and no certificate for "+host+" in Caddy's storage or certificate files",
			"start qrphgate so that it serves the site (and obtains its certificate), and check that the provider can reach it"))
		return
	}
	v := preflight.CertificateVerdict(stored, 0, opts)
	v.Reason = "checked the certificate " + where + " instead (" + connErr + "): " + v.Reason
	if v.Status == preflight.OK {
		v = preflight.Warning(v.Reason, "check that the site is reachable from the internet on port "+port)
	}
	run.r.Add("live.certificate", w.subject, v)
}

// localCARoots returns Caddy's local CA root from the config's storage
// (the authority of `tls internal`), or nil.
func (run *pfRun) localCARoots(ctx context.Context) *x509.CertPool {
	if run.cfg.storage == nil {
		return nil
	}
	b, err := run.cfg.storage.Load(ctx, internalCARootKey)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil
	}
	return pool
}

// storedCertificate looks for host's certificate in Caddy's storage (any
// issuer) and in the certificate files the config loads, and says where it
// found it.
func (run *pfRun) storedCertificate(ctx context.Context, host string) ([]*x509.Certificate, string) {
	if st := run.cfg.storage; st != nil {
		issuers, _ := st.List(ctx, "certificates", false)
		for _, dir := range issuers {
			key := certmagic.StorageKeys.SiteCert(path.Base(dir), host)
			if b, err := st.Load(ctx, key); err == nil {
				if chain := parseChain(b); chain != nil {
					return chain, "in Caddy's storage (" + key + ")"
				}
			}
		}
	}
	for _, f := range run.cfg.certFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if chain := parseChain(b); chain != nil && chain[0].VerifyHostname(host) == nil {
			return chain, "in " + f
		}
	}
	return nil, ""
}

func parseChain(b []byte) []*x509.Certificate {
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return chain
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil
		}
		chain = append(chain, c)
	}
}
