package caddymodule

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/audit"
	"github.com/qrphgate/qrphgate/proxy"
)

// The audit trail (audit_log) is one file for every handler of the
// process, held by a pool so that a reload that keeps the path keeps one
// writer (and its chain); a config's handlers get it from the modulus app.

var auditTrails = caddy.NewUsagePool()

// pooledTrail is an open trail in the pool.
type pooledTrail struct {
	t        *audit.Trail
	unstatus func()
}

func (p *pooledTrail) Destruct() error {
	p.unstatus()
	return p.t.Close()
}

// trailAuditor writes the engines' audit events to a trail.
type trailAuditor struct{ t *audit.Trail }

func (a trailAuditor) Audit(e proxy.AuditEvent) { a.t.Append(e.Event, e) }

// Audit trail metrics.
const (
	metricAuditLines     = "qrphgate_audit_lines_total"
	metricAuditDropped   = "qrphgate_audit_dropped_total"
	metricAuditRotations = "qrphgate_audit_rotations_total"
)

var (
	auditMetricsOnce sync.Once
	auditLines       *metrics.Counter
	auditDropped     *metrics.Counter
	auditRotated     map[string]*metrics.Counter
)

func initAuditMetrics() {
	auditLines = metricsSet.GetOrCreateCounter(metricAuditLines)
	auditDropped = metricsSet.GetOrCreateCounter(metricAuditDropped)
	auditRotated = map[string]*metrics.Counter{
		"done":   metricsSet.GetOrCreateCounter(metricAuditRotations + `{outcome="done"}`),
		"failed": metricsSet.GetOrCreateCounter(metricAuditRotations + `{outcome="failed"}`),
	}
}

// auditObserver counts the trail's outcomes and logs its failures (the
// first of a run, then every thousandth): a failure never fails a payment.
type auditObserver struct {
	log     *zap.Logger
	dropped *atomic.Int64
}

func (o auditObserver) Written(n int) { auditLines.Add(n) }

func (o auditObserver) Dropped(err error) {
	auditDropped.Inc()
	if n := o.dropped.Add(1); n == 1 || n%1000 == 0 {
		reason := "the writer is behind (queue full)"
		if err != nil {
			reason = err.Error()
		}
		o.log.Error("audit lines lost; payments go on, and the trail records the gap", zap.Int64("lost_so_far", n), zap.String("reason", reason))
	}
}

func (o auditObserver) Rotated(err error) {
	if err != nil {
		auditRotated["failed"].Inc()
		o.log.Error("audit trail rotation failed; writing on in the current file", zap.Error(err))
		return
	}
	auditRotated["done"].Inc()
}

// auditStatus is the trail's entry under "audit" in /modulus/status: the
// head recorded here shows a later cut of the trail's tail.
type auditStatus struct {
	Path string `json:"path"`
	Seq  uint64 `json:"seq"`
	Head string `json:"head"`
}

// provisionAudit opens (or joins) the trail audit_log names; the config's
// handlers report to it.
func (a *App) provisionAudit() error {
	a.audit = proxy.NopAuditor{}
	if a.AuditLog == "" {
		return nil
	}
	path, err := resolveOption(caddy.NewReplacer(), "audit_log", a.AuditLog)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(path) {
		return errors.New("audit_log must be an absolute file path")
	}
	path = filepath.Clean(path)
	if err := checkOwnFile("audit_log", fileRoleAudit, path); err != nil {
		return err
	}
	auditMetricsOnce.Do(initAuditMetrics)
	log := a.logger.Named("audit")
	v, _, err := auditTrails.LoadOrNew(path, func() (caddy.Destructor, error) {
		t, err := audit.Open(path, audit.Options{Observer: auditObserver{log: log, dropped: new(atomic.Int64)}})
		if err != nil {
			return nil, err
		}
		p := &pooledTrail{t: t}
		p.unstatus = status.register("audit", path, func() any {
			seq, head := t.Head()
			return auditStatus{Path: path, Seq: seq, Head: head}
		})
		return p, nil
	})
	if err != nil {
		return err
	}
	a.auditKey = path
	a.audit = trailAuditor{v.(*pooledTrail).t}
	return nil
}

func (a *App) releaseAudit() error {
	if a.auditKey == "" {
		return nil
	}
	key := a.auditKey
	a.auditKey = ""
	_, err := auditTrails.Delete(key)
	return err
}

// auditor is what the config's handlers report to (a no-op without
// audit_log, or without an app in unit tests).
func (a *App) auditor() proxy.Auditor {
	if a == nil || a.audit == nil {
		return proxy.NopAuditor{}
	}
	return a.audit
}
