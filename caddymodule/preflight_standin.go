package caddymodule

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
)

func init() {
	caddy.RegisterModule(PreflightStandIn{})
}

// PreflightStandIn (http.handlers.modulus_preflight) is used by `qrphgate
// modulus preflight` only. While preflight has Caddy provision a config
// (without starting it), a stand-in takes the place of each modulus
// handler, whose own Provision would open the spool, the store and the
// delivery worker that a running gateway may hold; preflight checks those
// handlers itself. The stand-in records what provisioning decided about
// its server (TLS, which automatic HTTPS sets at provision). It is never
// served: it answers 503.
type PreflightStandIn struct {
	// Run identifies the preflight run that placed the stand-in.
	Run string `json:"run,omitempty"`

	// Index is the handler's position in that run's list.
	Index int `json:"index,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (PreflightStandIn) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.modulus_preflight",
		New: func() caddy.Module { return new(PreflightStandIn) },
	}
}

// Provision records the server's TLS and the config's storage with the
// run; a stand-in outside a run records nothing.
func (s *PreflightStandIn) Provision(ctx caddy.Context) error {
	v, ok := preflightProbes.Load(s.Run)
	if !ok {
		return nil
	}
	p := v.(*preflightProbe)
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	p.mu.Lock()
	defer p.mu.Unlock()
	if srv != nil {
		p.tls[s.Index] = len(srv.TLSConnPolicies) > 0
	}
	if p.store == nil {
		p.store = contextStorage(ctx)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; a stand-in is never
// served (its config is never started).
func (PreflightStandIn) ServeHTTP(http.ResponseWriter, *http.Request, caddyhttp.Handler) error {
	return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("modulus_preflight is a stand-in used while checking a config"))
}

// preflightProbes holds the runs under way, by id.
var preflightProbes sync.Map

// preflightProbe collects what the stand-ins of one run record.
type preflightProbe struct {
	id    string
	mu    sync.Mutex
	tls   map[int]bool
	store certmagic.Storage
}

func newPreflightProbe() *preflightProbe {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	p := &preflightProbe{id: hex.EncodeToString(b), tls: map[int]bool{}}
	preflightProbes.Store(p.id, p)
	return p
}

func (p *preflightProbe) unregister() { preflightProbes.Delete(p.id) }

// serverTLS reports whether the server of handler i has TLS, and whether
// its stand-in was provisioned at all.
func (p *preflightProbe) serverTLS(i int) (tls, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tls, ok = p.tls[i]
	return tls, ok
}

func (p *preflightProbe) storage() certmagic.Storage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.store
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*PreflightStandIn)(nil)
	_ caddyhttp.MiddlewareHandler = (*PreflightStandIn)(nil)
)
