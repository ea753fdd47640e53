package caddymodule

import (
	"net/http"

	"github.com/VictoriaMetrics/metrics"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// metricsSet holds every qrphgate metric. It is package-level so that config
// reloads neither re-register (and panic) nor reset counters; metrics are
// created with GetOrCreate* and never carry unbounded labels (no IPs, no
// references).
var metricsSet = metrics.NewSet()

func init() {
	caddy.RegisterModule(Metrics{})
	httpcaddyfile.RegisterHandlerDirective("modulus_metrics", parseMetricsCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("modulus_metrics", httpcaddyfile.Before, "reverse_proxy")
}

// Metrics serves qrphgate's metrics in the Prometheus text format. It is a
// terminal handler; put it on an operator-only listener.
type Metrics struct{}

// CaddyModule returns the Caddy module information.
func (Metrics) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.modulus_metrics",
		New: func() caddy.Module { return new(Metrics) },
	}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if r.Method == http.MethodHead {
		return nil
	}
	metricsSet.WritePrometheus(w)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	modulus_metrics
//
// It takes no arguments and no block.
func (m *Metrics) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("modulus_metrics takes no options, got %q", d.Val())
	}
	return nil
}

func parseMetricsCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Metrics)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Metrics)(nil)
	_ caddyfile.Unmarshaler       = (*Metrics)(nil)
)
