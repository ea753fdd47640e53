package caddymodule

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/preflight"
)

// preflightOptions are the preflight command's flags, and what tests
// inject in place of the machine.
type preflightOptions struct {
	// Config and Adapter name the config file as `qrphgate run` takes it.
	Config, Adapter string

	// Live runs the online checks.
	Live bool

	// TestPayment, when set, is the amount of the test QR to create (it
	// implies Live).
	TestPayment string

	// WebhookURL is the public URL of the modulus_webhook site, when the
	// config cannot tell it (no host name, or a path pattern).
	WebhookURL string

	// Clock times the spool probes; nil is the real clock.
	Clock clock.Clock

	// SystemClock reads the clock's synchronisation; nil asks the kernel.
	SystemClock func() preflight.ClockState

	// Now is the time certificates must be valid at; nil is time.Now.
	Now func() time.Time

	// QRDir receives the test payment's QR image; "" is the system's
	// temporary directory.
	QRDir string
}

// pfRun is one preflight run: the config, what its handlers resolved to,
// and the report being written.
type pfRun struct {
	o        preflightOptions
	r        *preflight.Report
	cfg      *pfConfig
	repl     *caddy.Replacer
	secrets  []string
	apis     []*pfAPI
	webhooks []*pfWebhook
	// production is true when a modulus_api of the config is production.
	production bool
	// redis holds the Redis servers the handlers name, by resolved URL.
	redis map[string]*pfRedis
	// redisOrder keeps them in the order found.
	redisOrder []string
}

// pfRedis is a Redis server and what the config keeps on it.
type pfRedis struct {
	resolved string
	roles    []string
	spool    bool
}

// runPreflight runs the checklist and returns its report; it never starts
// the config, binds no port, and (offline) sends nothing anywhere.
func runPreflight(ctx context.Context, o preflightOptions) *preflight.Report {
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.SystemClock == nil {
		o.SystemClock = preflight.SystemClock
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TestPayment != "" {
		o.Live = true
	}
	run := &pfRun{o: o, repl: caddy.NewReplacer(), redis: map[string]*pfRedis{}}
	cfg, err := loadPreflightConfig(o.Config, o.Adapter)
	adapter := o.Adapter
	if cfg != nil {
		adapter = cfg.adapter
	}
	run.r = preflight.NewReport(o.Config, adapter, o.Live)
	switch {
	case err != nil:
		run.r.Add("config.adapt", "", preflight.Failure(err.Error(), "fix the config; `qrphgate adapt --config "+o.Config+"` shows the same error"))
		return run.r
	case len(cfg.warnings) > 0:
		run.r.Add("config.adapt", "", preflight.Warning("the config adapts with warnings: "+strings.Join(cfg.warnings, "; "),
			"fix what the warnings name (`qrphgate fmt --overwrite` formats a Caddyfile)"))
	default:
		run.r.Add("config.adapt", "", preflight.Pass("the config adapts ("+cfg.adapter+")"))
	}
	run.cfg = cfg
	cfg.provision()
	run.resolveHandlers()
	run.checkProvision()
	run.checkAPIs()
	run.checkSandboxes()
	run.checkWebhooks()
	run.checkLedger()
	run.checkRedis(ctx)
	run.checkProcess()
	if o.Live {
		run.checkLive(ctx)
	}
	if o.TestPayment != "" {
		run.testPayment(ctx)
	}
	run.r.Scrub(crypto.NewScrubber(run.secrets...))
	return run.r
}

// resolveHandlers decodes each modulus handler and runs its start-up
// checks without opening anything (see pfAPI, pfWebhook).
func (run *pfRun) resolveHandlers() {
	for _, h := range run.cfg.of(handlerAPI) {
		run.apis = append(run.apis, run.resolveAPI(h))
	}
	for _, a := range run.apis {
		run.production = run.production || (a.m != nil && a.m.Environment == policy.Production)
	}
	for _, h := range run.cfg.of(handlerWebhook) {
		run.webhooks = append(run.webhooks, run.resolveWebhook(h))
	}
}

// checkProvision is config.provision: Caddy provisions the config with
// stand-ins, and every modulus handler passes its start-up checks.
func (run *pfRun) checkProvision() {
	var found []preflight.Verdict
	const fix = "fix what the error names; `qrphgate validate --config FILE` runs the same start-up checks"
	if err := run.cfg.provisionErr; err != nil {
		found = append(found, preflight.Failure("Caddy refuses the config: "+err.Error(), fix))
	}
	for _, a := range run.apis {
		if a.err != nil {
			found = append(found, preflight.Failure(a.subject+": "+a.err.Error(), fix))
		}
	}
	for _, s := range run.cfg.of(handlerSandbox) {
		if err := run.resolveSandbox(s); err != nil {
			found = append(found, preflight.Failure("modulus_sandbox "+s.site().String()+": "+err.Error(), fix))
		}
	}
	settings := map[string]string{}
	for _, w := range run.webhooks {
		if w.err != nil {
			found = append(found, preflight.Failure(w.subject+": "+w.err.Error(), fix))
			continue
		}
		if fp, ok := settings[w.spool]; ok && fp != w.fingerprint {
			found = append(found, preflight.Failure(w.subject+": spool "+redactSpool(w.spool)+
				" is used by two modulus_webhook handlers with different delivery settings", "give each its own spool"))
		}
		settings[w.spool] = w.fingerprint
	}
	n := len(run.cfg.handlers)
	if n == 0 {
		run.r.Add("config.provision", "", preflight.Worst("", append(found,
			preflight.Warning("the config provisions, but it has no modulus_api, modulus_webhook or modulus_sandbox: nothing of qrphgate's to check",
				"point --config at qrphgate's config"))...))
		return
	}
	run.r.Add("config.provision", "", preflight.Worst(fmt.Sprintf(
		"the config provisions: Caddy's modules, and the start-up checks of %d modulus handler(s) (run without opening their stores, spools or workers)", n),
		found...))
}

// secret resolves a secret-bearing option as its handler does and keeps
// the value for scrubbing the report.
func (run *pfRun) secret(field, raw string, literalOK bool) (string, error) {
	v, _, err := resolveSecret(run.repl, field, raw, literalOK)
	if err == nil {
		run.secrets = append(run.secrets, v)
	}
	return v, err
}

// keepRedisSecret keeps a resolved Redis URL's password for scrubbing.
func (run *pfRun) keepRedisSecret(resolved string) {
	if u, err := url.Parse(resolved); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			run.secrets = append(run.secrets, pw)
		}
		run.secrets = append(run.secrets, u.User.Username())
	}
}

// addRedis records that a handler keeps role on the Redis server of spec.
func (run *pfRun) addRedis(spec, role string, spool bool) {
	resolved := resolveRedisURL(run.repl, spec)
	run.keepRedisSecret(resolved)
	s := run.redis[resolved]
	if s == nil {
		s = &pfRedis{resolved: resolved}
		run.redis[resolved] = s
		run.redisOrder = append(run.redisOrder, resolved)
	}
	s.roles = append(s.roles, role)
	s.spool = s.spool || spool
}

// nopLogger is what the handlers' start-up checks log to: the checklist
// reports what matters.
var nopLogger = zap.NewNop()
