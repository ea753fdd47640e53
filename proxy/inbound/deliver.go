package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Delivery outcomes, the "outcome" label of the delivery-attempts metric.
const (
	OutcomeDelivered = "delivered" // the app answered 2xx
	OutcomeRejected  = "rejected"  // the app answered something else
	OutcomeTimeout   = "timeout"   // no answer within forward_timeout
	OutcomeError     = "error"     // connection refused, reset, DNS...
)

// Outcomes lists every delivery outcome, for pre-creating metrics.
var Outcomes = []string{OutcomeDelivered, OutcomeRejected, OutcomeTimeout, OutcomeError}

// Delivery defaults.
const (
	DefaultForwardTimeout = 10 * time.Second
	DefaultRedeliverFor   = 72 * time.Hour
	DefaultConcurrency    = 32
)

// DefaultRetryBackoff spaces redeliveries: full jitter under a ceiling that
// doubles from 2 s up to 15 min (the provider's own retry interval).
var DefaultRetryBackoff = proxy.Backoff{Base: 2 * time.Second, Max: 15 * time.Minute}

// DeliveryConfig is what a Deliverer needs to reach the app. It can be
// replaced while the Deliverer runs (a config reload).
type DeliveryConfig struct {
	// URL receives the POSTs. Required.
	URL *url.URL

	// Timeout bounds one attempt; DefaultForwardTimeout when zero.
	Timeout time.Duration

	// RedeliverFor is how long an event is retried before it becomes a
	// dead letter, counted from receipt (or from its last replay);
	// DefaultRedeliverFor when zero.
	RedeliverFor time.Duration

	// Backoff spaces the retries; DefaultRetryBackoff when zero.
	Backoff proxy.Backoff

	// Signer, when set, adds Webhook-Signature: one entry per secret it
	// holds (crypto.JoinWebhookSigners during a rotation).
	Signer *crypto.WebhookSigner

	// Logger, when set, replaces the Deliverer's logger: a reloaded
	// configuration brings its own.
	Logger *zap.Logger

	// DeliveredRetention keeps a delivered event in the spool's history
	// (listed, replayable) that long before it is purged; zero removes it
	// at once.
	DeliveredRetention time.Duration

	// DeadLetterRetention purges a dead letter that long after it died;
	// zero keeps dead letters until they are replayed.
	DeadLetterRetention time.Duration

	// Auditor receives deliveries, dead letters, replays and purges for
	// the audit trail; proxy.NopAuditor when nil.
	Auditor proxy.Auditor
}

func (c DeliveryConfig) withDefaults() DeliveryConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultForwardTimeout
	}
	if c.RedeliverFor <= 0 {
		c.RedeliverFor = DefaultRedeliverFor
	}
	b := RetryBackoff(c.Backoff.Base, c.Backoff.Max)
	b.Rand = c.Backoff.Rand
	c.Backoff = b
	return c
}

// RetryBackoff is the redelivery backoff for a configured base and maximum,
// each DefaultRetryBackoff's when zero.
func RetryBackoff(base, maxWait time.Duration) proxy.Backoff {
	b := DefaultRetryBackoff
	if base > 0 {
		b.Base = base
	}
	if maxWait > 0 {
		b.Max = maxWait
	}
	return b
}

// CheckRetryBackoff is the retry_backoff rule: both positive (or zero, for
// the default) and the maximum, defaults applied, at least the base.
func CheckRetryBackoff(base, maxWait time.Duration) error {
	b := RetryBackoff(base, maxWait)
	if base < 0 || maxWait < 0 || b.Max < b.Base {
		return fmt.Errorf("retry_backoff needs two positive durations, the maximum (%s) at least the base (%s)", b.Max, b.Base)
	}
	return nil
}

// DelivererOptions set up a Deliverer.
type DelivererOptions struct {
	// Concurrency bounds simultaneous deliveries; DefaultConcurrency when zero.
	Concurrency int

	// Poll, when positive, makes the worker look at the spool at least this
	// often, for spools other processes also write (a shared Redis); a
	// file spool needs none, since Wake reports every new event.
	Poll time.Duration

	// Clock is the time source; clock.Real() when nil.
	Clock clock.Clock

	// Logger receives delivery logs; zap.NewNop() when nil.
	Logger *zap.Logger

	// Observer receives delivery outcomes (metrics); NopObserver when nil.
	Observer Observer

	// Transport, when set, replaces the HTTP transport (tests).
	Transport http.RoundTripper

	// Name names the spool in audit lines (never with credentials).
	Name string
}

// Deliverer takes events from a spool and POSTs each to the app until the
// app answers 2xx: the first attempt at once, then retries with full-jitter
// backoff until the redelivery window closes, then a dead letter. Delivery
// is at least once and in no particular order.
type Deliverer struct {
	name     string
	spool    store.Spool
	clock    clock.Clock
	log      *zap.Logger
	observe  Observer
	client   *http.Client
	slots    int
	poll     time.Duration
	cfg      atomic.Pointer[DeliveryConfig]
	wake     chan struct{}
	inFlight atomic.Int64
}

// NewDeliverer returns a Deliverer for spool; call Configure, then Run.
func NewDeliverer(spool store.Spool, o DelivererOptions) *Deliverer {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // the app is local; an HTTP(S)_PROXY meant for the internet must not capture it
		t.MaxIdleConnsPerHost = o.Concurrency
		rt = t
	}
	return &Deliverer{
		name: o.Name, spool: spool, clock: o.Clock, log: o.Logger, observe: o.Observer, slots: o.Concurrency, poll: o.Poll,
		client: &http.Client{
			Transport: rt,
			// A redirect is not an acceptance: the event is retried.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake: make(chan struct{}, 1),
	}
}

// CheckDeliveryConfig reports what Configure would refuse in cfg: no URL,
// or an impossible backoff.
func CheckDeliveryConfig(cfg DeliveryConfig) error {
	if cfg.URL == nil {
		return errors.New("delivery: forward_to is required")
	}
	if err := CheckRetryBackoff(cfg.Backoff.Base, cfg.Backoff.Max); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	return nil
}

// Configure sets where and how events are delivered; the next attempt uses
// it. It returns an error when cfg has no URL or an impossible backoff.
func (d *Deliverer) Configure(cfg DeliveryConfig) error {
	if err := CheckDeliveryConfig(cfg); err != nil {
		return err
	}
	c := cfg.withDefaults()
	d.cfg.Store(&c)
	d.Wake()
	return nil
}

// Config returns the configuration in use.
func (d *Deliverer) Config() DeliveryConfig {
	if c := d.cfg.Load(); c != nil {
		return *c
	}
	return DeliveryConfig{}
}

// Wake makes the worker look at the spool now (a new event, a freed slot).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// InFlight is the number of deliveries under way.
func (d *Deliverer) InFlight() int { return int(d.inFlight.Load()) }

func (d *Deliverer) logger() *zap.Logger {
	if c := d.cfg.Load(); c != nil && c.Logger != nil {
		return c.Logger
	}
	return d.log
}

// lease outlives an attempt comfortably, so only a stuck or dead worker
// loses its claim.
func (d *Deliverer) lease() time.Duration { return d.Config().Timeout + time.Minute }

// Run delivers until ctx is done, then waits for the attempts under way
// (they are cancelled with ctx and retried later) and returns.
func (d *Deliverer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, d.slots)
	for ctx.Err() == nil {
		if d.cfg.Load() == nil {
			select {
			case <-d.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		free := d.slots - len(sem)
		claimed := 0
		if free > 0 {
			evs, err := d.spool.Claim(ctx, d.clock.Now(), d.lease(), free)
			switch {
			case errors.Is(err, store.ErrUnavailable):
				// A shared spool's server is down: the store logs the
				// outage once; this loop retries every second quietly.
				d.logger().Debug("claiming events from the spool", zap.Error(err))
			case err != nil:
				d.logger().Error("claiming events from the spool", zap.Error(err))
			}
			claimed = len(evs)
			for _, ev := range evs {
				sem <- struct{}{}
				wg.Add(1)
				d.inFlight.Add(1)
				go func() {
					defer wg.Done()
					d.deliver(ctx, ev)
					d.inFlight.Add(-1)
					<-sem
					d.Wake()
				}()
			}
			if err != nil {
				if clock.Sleep(ctx, d.clock, time.Second) != nil {
					return
				}
				continue
			}
		}
		if claimed > 0 {
			continue // there may be more due
		}
		d.wait(ctx, free > 0)
	}
}

// wait sleeps until the next event is due (when a slot is free), a Wake,
// the poll interval, or ctx is done.
func (d *Deliverer) wait(ctx context.Context, slotFree bool) {
	var delay time.Duration = -1
	if slotFree {
		if due, ok, err := d.spool.NextDue(ctx); err == nil && ok {
			delay = max(due.Sub(d.clock.Now()), time.Millisecond)
		}
		if d.poll > 0 && (delay < 0 || d.poll < delay) {
			delay = d.poll
		}
	}
	var timer <-chan time.Time
	if delay >= 0 {
		t := d.clock.NewTimer(delay)
		defer t.Stop()
		timer = t.C()
	}
	select {
	case <-timer:
	case <-d.wake:
	case <-ctx.Done():
	}
}

// deliver makes one attempt and records its result in the spool.
func (d *Deliverer) deliver(ctx context.Context, ev store.SpoolEvent) {
	cfg := d.Config()
	attempt := ev.Attempts + 1
	log := d.logger().WithLazy(proxy.LogString("event_id", ev.ID), proxy.LogString("action", ev.Action),
		proxy.LogString("reference", ev.Reference), zap.Int("attempt", attempt))
	sctx := context.WithoutCancel(ctx)
	if ev.Undecryptable != "" {
		// Never delivered (there is nothing to deliver), never dropped:
		// a dead letter an operator sees, replayable once the key is back.
		d.bury(sctx, log, ev.ID, ev.Attempts, d.clock.Now(), ev.Undecryptable, DeadLetterUndecryptable)
		return
	}
	start := d.clock.Now()
	outcome, status, detail, retryAfter := d.post(ctx, cfg, ev, attempt, start)
	if ctx.Err() != nil {
		// Shutting down: the attempt is not held against the event; its
		// lease lapses and it is retried by the next worker.
		return
	}
	now := d.clock.Now()
	d.observe.Attempted(outcome, now.Sub(start))
	d.audit(proxy.AuditEvent{Event: proxy.AuditDelivery, EventID: ev.ID, Outcome: outcome, Status: status, Attempt: attempt})
	if outcome == OutcomeDelivered {
		done := d.spool.Complete
		if cfg.DeliveredRetention > 0 {
			done = func(ctx context.Context, id string) error { return d.spool.Archive(ctx, id, now) }
		}
		if err := done(sctx, ev.ID); err != nil {
			log.Error("delivered, but could not mark the event done; it may be delivered again", zap.Error(err))
			return
		}
		d.observe.Delivered(now.Sub(ev.Received))
		log.Info("webhook delivered", zap.Int("status", status), zap.Duration("latency", now.Sub(start)))
		return
	}
	if status == http.StatusGone {
		d.bury(sctx, log, ev.ID, attempt, now, goneDetail, DeadLetterGone, zap.Int("status", status))
		return
	}
	deadline := ev.RetryFrom.Add(cfg.RedeliverFor)
	if !now.Before(deadline) {
		d.bury(sctx, log, ev.ID, attempt, now, detail, DeadLetterExpired, zap.String("outcome", outcome),
			zap.Duration("redeliver_for", cfg.RedeliverFor))
		return
	}
	next := now.Add(retryDelay(cfg.Backoff, attempt-1, retryAfter))
	if next.After(deadline) {
		next = deadline // one last attempt as the window closes
	}
	if err := d.spool.Retry(sctx, ev.ID, attempt, next, detail); err != nil {
		log.Error("could not reschedule the event", zap.Error(err), zap.Time("next_attempt", next))
		return
	}
	// While the app is down every pending event fails again and again: warn
	// on the first failure and every tenth, the rest at debug level.
	level := zap.DebugLevel
	if attempt == 1 || attempt%10 == 0 {
		level = zap.WarnLevel
	}
	log.Log(level, "webhook delivery failed; will retry", zap.String("outcome", outcome),
		proxy.LogString("error", detail), zap.Time("next_attempt", next))
}

// post sends one attempt and classifies the answer. status is the app's
// HTTP status (0 without an answer); detail names the status or the
// transport error, never the body; retryAfter is the wait a 429 or 503
// asked for (appRetryAfter).
func (d *Deliverer) post(ctx context.Context, cfg DeliveryConfig, ev store.SpoolEvent, attempt int, now time.Time) (outcome string, status int, detail string, retryAfter time.Duration) {
	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, cfg.URL.String(), bytes.NewReader(ev.Body))
	if err != nil {
		return OutcomeError, 0, "building the request: " + err.Error(), 0
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "qrphgate")
	h.Set(proxy.HeaderWebhookID, ev.ID)
	h.Set(proxy.HeaderWebhookTimestamp, ts)
	h.Set(proxy.HeaderWebhookAttempt, strconv.Itoa(attempt))
	if ev.ActivationCode != "" {
		h.Set(proxy.HeaderModulusActivationCode, ev.ActivationCode)
	}
	h.Set(proxy.HeaderWebhookSource, sourceOf(ev))
	if ev.Reconciliation != "" {
		h.Set(proxy.HeaderReconciliation, ev.Reconciliation)
	}
	if cfg.Signer != nil {
		h.Set(proxy.HeaderWebhookSignature, cfg.Signer.Sign(ev.ID, ts, ev.Body))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return OutcomeTimeout, 0, fmt.Sprintf("no answer within %v", cfg.Timeout), 0
		}
		return OutcomeError, 0, proxy.Truncate(err.Error(), 200), 0
	}
	// Drain a little so the connection can be reused; the app's answer is
	// not otherwise read.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	detail = "HTTP " + strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return OutcomeDelivered, resp.StatusCode, detail, 0
	}
	return OutcomeRejected, resp.StatusCode, detail, appRetryAfter(resp, d.clock.Now())
}

// DeliveryStatus is the Deliverer's state for the status page.
type DeliveryStatus struct {
	Pending          int     `json:"pending"`
	InFlight         int     `json:"in_flight"`
	OldestPendingAge float64 `json:"oldest_pending_age_seconds"`
	DeadLetters      int     `json:"dead_letters"`
	ForwardTo        string  `json:"forward_to"`
	Signed           bool    `json:"signed"`
	// SigningSecrets counts the secrets that sign (two during a rotation).
	SigningSecrets int `json:"signing_secrets"`
}

// Status reports the spool and delivery state.
func (d *Deliverer) Status(ctx context.Context) (DeliveryStatus, error) {
	st, err := d.spool.Stats(ctx)
	if err != nil {
		return DeliveryStatus{}, err
	}
	cfg := d.Config()
	out := DeliveryStatus{Pending: st.Pending, InFlight: d.InFlight(), DeadLetters: st.DeadLetters, Signed: cfg.Signer != nil}
	if cfg.Signer != nil {
		out.SigningSecrets = cfg.Signer.Keys()
	}
	if cfg.URL != nil {
		out.ForwardTo = cfg.URL.Redacted()
	}
	if !st.OldestPending.IsZero() {
		out.OldestPendingAge = max(d.clock.Now().Sub(st.OldestPending), 0).Seconds()
	}
	return out, nil
}
