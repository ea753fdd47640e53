package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// What a readiness check reads of the gateway. The provider's /ping is
// called from the background (modulus_health's poller), never per probe.

// Upstream is one configured upstream API.
type Upstream struct {
	// Name is "qr" or "webhooks".
	Name string
	// URL is its base URL.
	URL string
}

// Upstreams returns the configured upstream APIs: the QR API, and the
// webhooks API when webhooks_url is set.
func (o *Handler) Upstreams() []Upstream {
	ups := []Upstream{{Name: o.qr.name, URL: o.qr.base}}
	if o.webhooks != nil {
		ups = append(ups, Upstream{Name: o.webhooks.name, URL: o.webhooks.base})
	}
	return ups
}

// healthPingEndpoint labels the health pings in metrics and logs, apart
// from the app's own GET /ping.
const healthPingEndpoint = "health_ping"

// Ping calls the named upstream's GET /ping (no credentials) as the app's
// /ping does: through the breaker and with a slot of the rate budget (the
// provider's limit holds whatever calls it), waiting at most maxWait for
// the slot. It returns how long the answering attempt took; any answer but
// a 2xx is an error whose text (code, message, the provider's status, the
// cause scrubbed of secrets) is fit for a health report.
func (o *Handler) Ping(ctx context.Context, api string, maxWait time.Duration) (time.Duration, error) {
	up := o.qr
	switch {
	case api == "webhooks" && o.webhooks != nil:
		up = o.webhooks
	case api != "qr":
		return 0, fmt.Errorf("no %s API is configured", api)
	}
	res, e := o.call(ctx, upstreamCall{endpoint: healthPingEndpoint, up: up, method: http.MethodGet, path: "/ping"}, o.clock.Now().Add(maxWait))
	if e != nil {
		msg := e.Code + ": " + e.Message
		if e.Upstream != nil {
			msg += fmt.Sprintf(" (HTTP %d)", e.Upstream.Status)
		}
		if e.Err != nil {
			msg += ": " + o.scrub.Scrub(e.Err.Error())
		}
		return 0, errors.New(msg)
	}
	return o.clock.Now().Sub(res.sentAt), nil
}

// CredentialsRejected reports whether the credentials fuse is blown: every
// authenticated call is refused until the configuration is reloaded.
func (o *Handler) CredentialsRejected() bool { return o.fuse.Blown() }

// BreakerStates returns each upstream's breaker state, by upstream name.
func (o *Handler) BreakerStates() map[string]BreakerState {
	st := map[string]BreakerState{o.qr.name: o.qr.breaker.State()}
	if o.webhooks != nil {
		st[o.webhooks.name] = o.webhooks.breaker.State()
	}
	return st
}
