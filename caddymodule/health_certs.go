package caddymodule

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/qrphgate/qrphgate/proxy/health"
)

// The webhook site's certificate: the names are the host names of the
// sites whose routes lead to a modulus_webhook (or cert_names), the
// certificates those Caddy holds in its cache for them, as it serves them.

// metricCertExpiry is the seconds until a configured name's certificate
// expires (negative once expired, 0 when Caddy holds none for it).
const metricCertExpiry = "qrphgate_tls_certificate_expiry_seconds"

// webhookSiteNames returns the host names of the routes that lead to a
// modulus_webhook on a TLS server of the config's http app, sorted; none
// when the app is absent or those routes match no host (a site such as
// https://:8443). A plain-HTTP site (http://, behind a proxy that ends TLS)
// serves no certificate of its own: its names are not checked.
func webhookSiteNames(ctx caddy.Context) []string {
	v, err := ctx.AppIfConfigured("http")
	if err != nil {
		return nil
	}
	app, ok := v.(*caddyhttp.App)
	if !ok {
		return nil
	}
	found := map[string]bool{}
	for _, srv := range app.Servers {
		if servesTLS(srv) {
			walkRoutes(srv.Routes, nil, found)
		}
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// servesTLS reports whether srv serves HTTPS: it has TLS connection
// policies, which automatic HTTPS (or the config) gave it when the http app
// provisioned.
func servesTLS(srv *caddyhttp.Server) bool { return len(srv.TLSConnPolicies) > 0 }

// walkRoutes adds to found the hosts matched on the way to each
// modulus_webhook (the innermost host matcher wins).
func walkRoutes(routes caddyhttp.RouteList, hosts []string, found map[string]bool) {
	for _, r := range routes {
		hs := hosts
		for _, set := range r.MatcherSets {
			for _, m := range set {
				switch mh := m.(type) {
				case caddyhttp.MatchHost:
					hs = mh
				case *caddyhttp.MatchHost:
					hs = *mh
				}
			}
		}
		for _, h := range r.Handlers {
			switch h := h.(type) {
			case *Webhook:
				for _, n := range hs {
					if n != "" && !strings.Contains(n, "{") {
						found[strings.ToLower(n)] = true
					}
				}
			case *caddyhttp.Subroute:
				walkRoutes(h.Routes, hs, found)
			}
		}
	}
}

// cachedCertificates returns the certificates Caddy holds for name.
func cachedCertificates(name string) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range caddytls.AllMatchingCertificates(name) {
		if c.Leaf != nil {
			out = append(out, c.Leaf)
		}
	}
	return out
}

// newestCertificate returns, of the certificates for name, the one valid
// longest (a renewed certificate beside the old one), or nil.
func newestCertificate(lookup func(string) []*x509.Certificate, name string) *x509.Certificate {
	var best *x509.Certificate
	for _, c := range lookup(name) {
		if best == nil || c.NotAfter.After(best.NotAfter) {
			best = c
		}
	}
	return best
}

// certificateCheck: valid for more than warn is ok, less is degraded,
// expired or not yet valid is unavailable (the provider cannot deliver to
// this replica). None at all is degraded: Caddy may still be obtaining it
// (every replica alike, and taking them out of service would not get it
// sooner), or the name is served by something else (a proxy that ends TLS
// in front of it, a name in cert_names that this process does not serve).
func certificateCheck(lookup func(string) []*x509.Certificate, name string, warn time.Duration, now time.Time) health.Result {
	res := health.Result{Status: health.OK, CheckedAt: now}
	c := newestCertificate(lookup, name)
	switch {
	case c == nil:
		res.Status, res.Message = health.Degraded, "no certificate for "+name+" (not obtained yet, or the name is not served)"
	case now.After(c.NotAfter):
		res.Status, res.Message = health.Unavailable, fmt.Sprintf("expired at %s", c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		res.Status, res.Message = health.Unavailable, fmt.Sprintf("not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	case c.NotAfter.Sub(now) <= warn:
		res.Status, res.Message = health.Degraded, fmt.Sprintf("expires at %s, within cert_warn (%s)", c.NotAfter.UTC().Format(time.RFC3339), warn)
	default:
		res.Message = fmt.Sprintf("valid until %s", c.NotAfter.UTC().Format(time.RFC3339))
	}
	return res
}

// certGauges counts, per name, the running handlers that check it: a name
// has its expiry series while one does (names of configured sites only,
// never what a client sent as SNI).
var certGauges = struct {
	sync.Mutex
	refs map[string]int
}{refs: map[string]int{}}

// retainCertGauges creates the expiry series of names (each read from
// lookup when scraped) and returns the function that drops them again.
func retainCertGauges(names []string, lookup func(string) []*x509.Certificate) (release func()) {
	certGauges.Lock()
	defer certGauges.Unlock()
	for _, n := range names {
		certGauges.refs[n]++
		name := n
		metricsSet.GetOrCreateGauge(certSeries(name), func() float64 {
			c := newestCertificate(lookup, name)
			if c == nil {
				return 0
			}
			return time.Until(c.NotAfter).Seconds()
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			certGauges.Lock()
			defer certGauges.Unlock()
			for _, n := range names {
				if certGauges.refs[n]--; certGauges.refs[n] <= 0 {
					delete(certGauges.refs, n)
					metricsSet.UnregisterMetric(certSeries(n))
				}
			}
		})
	}
}

func certSeries(name string) string { return fmt.Sprintf("%s{name=%q}", metricCertExpiry, name) }
