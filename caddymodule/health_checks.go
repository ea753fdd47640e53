package caddymodule

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy/health"
	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// The readiness checks. Those that cost a disk write or a round trip run
// in the background on a pooled poller (so a reload keeps their results and
// a probe never triggers one); the rest read state in memory when asked.
//
//	spool:<spool>            a write, fsynced (file) or acknowledged (Redis); unavailable when it fails
//	store:<label>            Redis PING; unavailable when it fails and a webhook spool or de-duplication is on it, else degraded
//	upstream:<api>:<host>    the provider's GET /ping, every health_interval; degraded when it fails
//	credentials:<env>:<acct> the credentials fuse; degraded when blown (every replica has the same credentials)
//	breaker:<env>:<acct>:<api>  degraded while open or half-open
//	certificate:<name>       the webhook site's certificate; see certificateCheck

// healthSettings are what the pooled poller runs with (the pool key).
type healthSettings struct {
	checkEvery, pingEvery, timeout time.Duration
}

// maxPingTimeout bounds a health ping's run: the provider's own answer
// deadline for webhooks is 10 s; a ping slower than this is down.
const maxPingTimeout = 30 * time.Second

// probes are the background checks of the process, asked for anew at each
// round of the poller.
func (s healthSettings) probes() []health.Probe {
	var ps []health.Probe
	for _, w := range liveWebhookWorkers() {
		p, ok := w.spool.(spoolProber)
		if !ok {
			continue
		}
		ps = append(ps, health.Probe{
			Name: "spool:" + w.name, Every: s.checkEvery, Timeout: s.timeout, Failure: health.Unavailable,
			Run: func(ctx context.Context) (health.Status, string) {
				if err := p.Probe(ctx); err != nil {
					return health.Unavailable, err.Error()
				}
				return health.OK, "write acknowledged"
			},
		})
	}
	for label, r := range liveRedisStores() {
		// Only a server the webhooks need takes the replica out of
		// service: without it no webhook can be spooled or checked for a
		// duplicate. Others (modulus_api's store, the ledger, a rate
		// limiter) fail their own calls, on every replica alike.
		failure, note := health.Unavailable, ""
		if !webhooksNeed(r) {
			failure, note = health.Degraded, " (no modulus_webhook spools or de-duplicates on it: webhooks are still taken)"
		}
		ps = append(ps, health.Probe{
			Name: "store:" + label, Every: s.checkEvery, Timeout: s.timeout, Failure: failure,
			Run: func(ctx context.Context) (health.Status, string) {
				if err := r.Ping(ctx); err != nil {
					return failure, err.Error() + note
				}
				return health.OK, "PONG from " + r.Name()
			},
		})
	}
	seen := map[string]bool{}
	for _, e := range liveHealthEngines() {
		for _, up := range e.engine.Upstreams() {
			name := upstreamCheckName(up)
			if seen[name] {
				continue // another account's engine pings the same host
			}
			seen[name] = true
			engine, api := e.engine, up.Name
			ps = append(ps, health.Probe{
				Name: name, Every: s.pingEvery, Timeout: min(s.pingEvery, maxPingTimeout), Failure: health.Degraded,
				Run: func(ctx context.Context) (health.Status, string) {
					d, err := engine.Ping(ctx, api, s.timeout)
					if err != nil {
						return health.Degraded, err.Error()
					}
					return health.OK, fmt.Sprintf("pong in %s", d.Round(time.Millisecond))
				},
			})
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// upstreamCheckName is "upstream:<api>:<host>".
func upstreamCheckName(up outbound.Upstream) string {
	host := up.URL
	if u, err := url.Parse(up.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	return "upstream:" + up.Name + ":" + host
}

// engineChecks reads the credentials fuse and the breakers of every live
// modulus_api.
func engineChecks(now time.Time, into map[string]health.Result) {
	for _, e := range liveHealthEngines() {
		id := e.env + ":" + e.account
		cred := health.Result{Status: health.OK, Message: "accepted, or not rejected yet", CheckedAt: now}
		if e.engine.CredentialsRejected() {
			// Degraded, not unavailable: every replica runs the same
			// credentials, so another would fare no better, and taking
			// them all out of service would stop the webhooks too, which
			// need no credentials.
			cred.Status, cred.Message = health.Degraded, "the provider rejected the credentials repeatedly: calls are stopped until the configuration is fixed and reloaded"
		}
		into["credentials:"+id] = cred
		for api, st := range e.engine.BreakerStates() {
			br := health.Result{Status: health.OK, Message: st.String(), CheckedAt: now}
			if st != outbound.BreakerClosed {
				br.Status, br.Message = health.Degraded, st.String()+": calls to the provider's "+api+" API are refused while it recovers"
			}
			into["breaker:"+id+":"+api] = br
		}
	}
}

// healthPollers holds one poller per settings: a reload with the same
// settings keeps it and its results.
var healthPollers = caddy.NewUsagePool()

type healthPoller struct {
	*health.Poller
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *healthPoller) Destruct() error {
	p.cancel()
	<-p.done
	return nil
}

// acquireHealthPoller returns the running poller for s (starting it) and
// its pool key. clk is a new poller's clock (nil: the real one; tests).
func acquireHealthPoller(s healthSettings, clk clock.Clock) (*healthPoller, string, error) {
	key := fmt.Sprintf("health|%v|%v|%v", s.checkEvery, s.pingEvery, s.timeout)
	if clk != nil {
		key += fmt.Sprintf("|%p", clk)
	}
	v, _, err := healthPollers.LoadOrNew(key, func() (caddy.Destructor, error) {
		ctx, cancel := context.WithCancel(context.Background())
		p := &healthPoller{Poller: health.NewPoller(clk, s.probes), cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(p.done)
			p.Run(ctx)
		}()
		return p, nil
	})
	if err != nil {
		return nil, "", err
	}
	return v.(*healthPoller), key, nil
}

// livePollerResults returns the results of every running poller whose
// check names start with prefix.
func livePollerResults(prefix string) []health.Result {
	var out []health.Result
	healthPollers.Range(func(_, v any) bool {
		for name, r := range v.(*healthPoller).Results() {
			if strings.HasPrefix(name, prefix) {
				out = append(out, r)
			}
		}
		return true
	})
	return out
}
