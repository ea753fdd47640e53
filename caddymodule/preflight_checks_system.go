package caddymodule

import (
	"context"
	"strings"
	"time"

	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/store"
)

// checkRedis opens each Redis server the handlers name through the opener
// they use (acquireRedis), and checks that it answers and how it persists.
func (run *pfRun) checkRedis(ctx context.Context) {
	for _, resolved := range run.redisOrder {
		s := run.redis[resolved]
		subject := store.RedactURL(resolved) + " (" + strings.Join(s.roles, "; ") + ")"
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, release, err := acquireRedis(cctx, resolved)
		if err != nil {
			cancel()
			run.r.Add("redis.reachable", subject, preflight.Failure(err.Error(), "fix the Redis URL"))
			continue
		}
		start := time.Now()
		err = r.Ping(cctx)
		elapsed := time.Since(start)
		if err != nil {
			run.r.Add("redis.reachable", subject, preflight.Failure("the server does not answer: "+err.Error(),
				"start Redis, or fix its address, password or TLS (rediss://)"))
		} else {
			run.r.Add("redis.reachable", subject, preflight.Pass("the server answers PING in "+preflight.FormatDuration(elapsed)).Timed(elapsed))
			p, err := r.Persistence(cctx)
			run.r.Add("redis.persistence", subject, preflight.PersistenceVerdict(p, err, s.spool))
		}
		cancel()
		_ = release()
	}
}

// checkLedger is ledger.store: the payments ledger's back end (the
// modulus app's ledger option), when it is not memory: its syntax, and a
// file ledger's directory as webhook.spool checks the spool's; a Redis
// ledger joins the redis.* checks.
func (run *pfRun) checkLedger() {
	spec := run.cfg.ledger
	if spec == "" {
		return
	}
	if err := checkLedgerSpec(spec); err != nil {
		run.r.Add("ledger.store", "", preflight.Failure(err.Error(), "set ledger to memory, file:///absolute/path or redis://host:port/db"))
		return
	}
	if rest, ok := strings.CutPrefix(spec, "file://"); ok {
		run.r.Add("ledger.store", "", preflight.SpoolFileVerdict("ledger", run.repl.ReplaceKnown(rest, ""), run.o.Clock))
		return
	}
	run.addRedis(spec, "payments ledger", false)
}

// checkProcess runs the checks of the whole process: the admin API's
// address, the operator handlers, the clock.
func (run *pfRun) checkProcess() {
	run.r.Add("admin.listen", "", preflight.AdminVerdict(run.cfg.adminListen, run.cfg.adminOff))
	if run.cfg.handlerNames["modulus_metrics"] {
		run.r.Add("ops.metrics", "", preflight.Pass("a modulus_metrics handler serves the metrics"))
	} else {
		run.r.Add("ops.metrics", "", preflight.Warning("no modulus_metrics handler: the payment metrics (and the alerts built on them) are not served",
			"serve modulus_metrics on an operator-only listener, e.g. http://127.0.0.1:9180 { modulus_metrics }"))
	}
	if run.cfg.handlerNames["modulus_health"] {
		run.r.Add("ops.health", "", preflight.Pass("a modulus_health handler answers health checks"))
	} else {
		run.r.Add("ops.health", "", preflight.Warning("no modulus_health handler: load balancers and orchestrators cannot tell whether qrphgate works",
			"serve modulus_health on the operators' site, e.g. handle /readyz { modulus_health }, and point the readiness probe at it (docs/operations.md)"))
	}
	run.r.Add("system.clock", "", preflight.ClockVerdict(run.o.SystemClock()))
}
