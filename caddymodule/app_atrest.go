package caddymodule

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/store"
)

// Encryption at rest covers every handler of the process, so its keys are
// the modulus app's (at_rest_key, repeatable: the first encrypts, all
// decrypt) and live in one process-wide setting that every back end
// writing to disk or Redis holds: the spools, the outbound store's
// idempotent answers and the payments ledger. Those back ends are pooled
// across reloads; a configuration with other keys puts them in use when
// it starts (a refused one never does), and each pooled back end's
// re-encryption pass seals what the previous keys (or none) wrote.

// atRest is the process's at-rest setting.
var atRest = store.NewAtRest(nil)

// atRestStarted is set once a configuration has started: from then on the
// keys change only when another one starts.
var atRestStarted atomic.Bool

// atRestMu orders the changes of the setting with their log line.
var atRestMu sync.Mutex

// sealer resolves and decodes the configured keys (nil when there are
// none). Keys are named at_rest_key[1], [2]... in errors.
func (a *App) sealer(repl *caddy.Replacer) (*store.Sealer, error) {
	if len(a.AtRestKeys) == 0 {
		return nil, nil
	}
	enc, err := crypto.ParseEncoding(a.AtRestKeyEncoding)
	if err != nil {
		return nil, fmt.Errorf("at_rest_key_encoding: %w", err)
	}
	keys := make([][]byte, 0, len(a.AtRestKeys))
	for i, raw := range a.AtRestKeys {
		name := listName("at_rest_key", i)
		material, _, err := resolveSecret(repl, name, raw, false)
		if err != nil {
			return nil, err
		}
		b, err := crypto.DecodeKey(material, enc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		keys = append(keys, b)
	}
	s, err := store.NewSealer(keys...)
	if err != nil {
		return nil, fmt.Errorf("at_rest_key: %w", err)
	}
	return s, nil
}

// provisionAtRest checks the keys and puts them in use when the config
// starts; before any config has started (the process's first), at once,
// so the back ends this config opens seal from their first write.
func (a *App) provisionAtRest() error {
	sl, err := a.sealer(caddy.NewReplacer())
	if err != nil {
		return err
	}
	log := a.logger
	if !atRestStarted.Load() {
		useAtRestKeys(sl, log)
	}
	a.OnStart(func() {
		useAtRestKeys(sl, log)
		atRestStarted.Store(true)
	})
	return nil
}

// useAtRestKeys puts sl in use unless the same keys already are (a reload
// that keeps them wakes no re-encryption pass).
func useAtRestKeys(sl *store.Sealer, log *zap.Logger) {
	atRestMu.Lock()
	defer atRestMu.Unlock()
	cur := atRest.Sealer()
	if slices.Equal(keyIDs(cur), keyIDs(sl)) {
		return
	}
	atRest.Set(sl)
	switch {
	case sl == nil:
		log.Warn("at-rest encryption is off: new records are stored in plain text, and records sealed before cannot be read until at_rest_key is configured again")
	case cur == nil:
		log.Info("at-rest encryption is on; records stored in plain text before are being sealed in the background",
			zap.Strings("key_ids", sl.KeyIDs()))
	default:
		log.Info("at-rest keys changed; records sealed with a key other than the first are being sealed again in the background",
			zap.Strings("key_ids", sl.KeyIDs()))
	}
}

func keyIDs(s *store.Sealer) []string {
	if s == nil {
		return nil
	}
	return s.KeyIDs()
}

// Re-encryption metrics: the part label is spool or ledger.
const (
	metricResealed      = "qrphgate_at_rest_resealed_total"
	metricUndecryptable = "qrphgate_at_rest_undecryptable_records"
	metricResealPasses  = "qrphgate_at_rest_passes_total"
)

// resealer runs one pooled back end's re-encryption passes and keeps
// their last result for the status page and the metrics.
type resealer struct {
	part, name string
	cancel     context.CancelFunc
	done       chan struct{}

	mu   sync.Mutex
	last store.ResealStats
	err  string
	runs int
}

var (
	resealersMu sync.Mutex
	resealers   = map[*resealer]struct{}{}
)

// startReseal runs r's re-encryption passes until the returned stop is
// called (the back end's pool entry is destroyed).
func startReseal(part, name string, r store.Resealer, log *zap.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	rs := &resealer{part: part, name: name, cancel: cancel, done: make(chan struct{})}
	resealersMu.Lock()
	resealers[rs] = struct{}{}
	resealersMu.Unlock()
	go func() {
		defer close(rs.done)
		store.RunReseal(ctx, r, atRest, store.ResealOptions{Observer: resealObserver{rs, log}})
	}()
	return func() {
		resealersMu.Lock()
		delete(resealers, rs)
		resealersMu.Unlock()
		rs.cancel()
		<-rs.done
	}
}

// resealObserver turns a runner's progress into metrics and logs.
type resealObserver struct {
	rs  *resealer
	log *zap.Logger
}

func (o resealObserver) Resealed(st store.ResealStats) {
	if st.Resealed > 0 {
		metricsSet.GetOrCreateCounter(metricResealed + `{part="` + o.rs.part + `"}`).Add(st.Resealed)
	}
}

func (o resealObserver) PassDone(st store.ResealStats, err error) {
	o.rs.mu.Lock()
	o.rs.last, o.rs.runs, o.rs.err = st, o.rs.runs+1, ""
	if err != nil {
		o.rs.err = err.Error()
	}
	o.rs.mu.Unlock()
	outcome := "done"
	fields := []zap.Field{zap.String("part", o.rs.part), zap.String("name", o.rs.name), zap.Int("checked", st.Checked),
		zap.Int("resealed", st.Resealed), zap.Int("undecryptable", st.Undecryptable)}
	switch {
	case err != nil:
		outcome = "failed"
		o.log.Warn("at-rest re-encryption pass failed; it runs again later", append(fields, zap.Error(err))...)
	case st.Undecryptable > 0:
		o.log.Error("at-rest re-encryption pass found records no configured at_rest_key decrypts", fields...)
	case st.Resealed > 0:
		o.log.Info("at-rest re-encryption pass done", fields...)
	}
	metricsSet.GetOrCreateCounter(metricResealPasses + `{part="` + o.rs.part + `",outcome="` + outcome + `"}`).Inc()
}

// atRestStatus is "at_rest" in /modulus/status.
type atRestStatus struct {
	Enabled bool     `json:"enabled"`
	KeyIDs  []string `json:"key_ids,omitempty"`
	// Passes is each back end's last re-encryption pass: when Resealed
	// and Undecryptable are zero after a rotation, the older keys can go.
	Passes []resealStatus `json:"passes,omitempty"`
}

type resealStatus struct {
	Part          string `json:"part"`
	Name          string `json:"name"`
	Passes        int    `json:"passes"`
	Checked       int    `json:"checked"`
	Resealed      int    `json:"resealed"`
	Undecryptable int    `json:"undecryptable"`
	Error         string `json:"error,omitempty"`
}

func currentAtRestStatus() any {
	sl := atRest.Sealer()
	out := atRestStatus{Enabled: sl != nil, KeyIDs: keyIDs(sl)}
	resealersMu.Lock()
	for rs := range resealers {
		rs.mu.Lock()
		out.Passes = append(out.Passes, resealStatus{Part: rs.part, Name: rs.name, Passes: rs.runs, Checked: rs.last.Checked,
			Resealed: rs.last.Resealed, Undecryptable: rs.last.Undecryptable, Error: rs.err})
		rs.mu.Unlock()
	}
	resealersMu.Unlock()
	slices.SortFunc(out.Passes, func(a, b resealStatus) int {
		return cmp.Or(strings.Compare(a.Part, b.Part), strings.Compare(a.Name, b.Name))
	})
	return out
}

var atRestMetricsOnce sync.Once

// initAtRestMetrics registers the at-rest status and the gauge of
// undecryptable records (as the last passes found them).
func initAtRestMetrics() {
	status.register("at_rest", "keys", currentAtRestStatus)
	metricsSet.GetOrCreateGauge(metricUndecryptable, func() float64 {
		n := 0
		resealersMu.Lock()
		for rs := range resealers {
			rs.mu.Lock()
			n += rs.last.Undecryptable
			rs.mu.Unlock()
		}
		resealersMu.Unlock()
		return float64(n)
	})
	for _, part := range []string{"spool", "ledger"} {
		metricsSet.GetOrCreateCounter(metricResealed + `{part="` + part + `"}`)
		for _, o := range []string{"done", "failed"} {
			metricsSet.GetOrCreateCounter(metricResealPasses + `{part="` + part + `",outcome="` + o + `"}`)
		}
	}
}
