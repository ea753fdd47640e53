package caddymodule

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/qrphgate/qrphgate/ledger"
)

// Payments ledger metrics. Labels come from fixed sets: ledger.Statuses,
// ledger.Flags, ledgerOps and the expiry event outcomes.
const (
	metricTransactions       = "qrphgate_transactions_total"
	metricReconciliationFlag = "qrphgate_reconciliation_flags_total"
	metricLedgerErrors       = "qrphgate_ledger_errors_total"
	metricExpiryEvents       = "qrphgate_ledger_expiry_events_total"
	metricLedgerSweeps       = "qrphgate_ledger_sweeps_total"
	metricLedgerPurged       = "qrphgate_ledger_purged_total"
)

// ledgerOps are the op label values of qrphgate_ledger_errors_total.
var ledgerOps = []string{"record", "reconcile", "expire", "emit", "purge", "lookup"}

var (
	ledgerMetricsOnce sync.Once
	transitionCounter map[string]*metrics.Counter
	flagCounter       map[string]*metrics.Counter
	ledgerErrCounter  map[string]*metrics.Counter
	expiryCounter     map[string]*metrics.Counter
	sweepCounter      *metrics.Counter
	purgedCounter     *metrics.Counter
)

// initLedgerMetrics creates every series at zero when the first ledger is
// opened, so dashboards see them before traffic.
func initLedgerMetrics() {
	counters := func(metric, label string, values []string) map[string]*metrics.Counter {
		m := make(map[string]*metrics.Counter, len(values))
		for _, v := range values {
			m[v] = metricsSet.GetOrCreateCounter(metric + `{` + label + `="` + v + `"}`)
		}
		return m
	}
	transitionCounter = counters(metricTransactions, "status", ledger.Statuses)
	flagCounter = counters(metricReconciliationFlag, "flag", ledger.Flags)
	ledgerErrCounter = counters(metricLedgerErrors, "op", ledgerOps)
	expiryCounter = counters(metricExpiryEvents, "outcome", []string{"emitted", "failed"})
	sweepCounter = metricsSet.GetOrCreateCounter(metricLedgerSweeps)
	purgedCounter = metricsSet.GetOrCreateCounter(metricLedgerPurged)
}

// ledgerMetrics is the ledger's Observer.
type ledgerMetrics struct{}

func inc(m map[string]*metrics.Counter, k string) {
	if c := m[k]; c != nil {
		c.Inc()
	}
}

func (ledgerMetrics) Transition(status string) { inc(transitionCounter, status) }
func (ledgerMetrics) Flagged(flag string)      { inc(flagCounter, flag) }
func (ledgerMetrics) StoreFailed(op string)    { inc(ledgerErrCounter, op) }
func (ledgerMetrics) ExpiryEvent(o string)     { inc(expiryCounter, o) }

func (ledgerMetrics) Swept()       { sweepCounter.Inc() }
func (ledgerMetrics) Purged(n int) { purgedCounter.Add(n) }

// Interface guard.
var _ ledger.Observer = ledgerMetrics{}
