package sandbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// sender POSTs webhooks, from a chosen source address when configured, and
// verifies HTTPS callbacks against the roots it is given (re-read before
// each attempt, since Caddy's internal CA may appear after start-up).
type sender struct {
	dialer *net.Dialer
	roots  func() *x509.CertPool

	mu     sync.Mutex
	pool   *x509.CertPool
	client *http.Client
}

func newSender(source netip.Addr, roots func() *x509.CertPool) *sender {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: source.AsSlice()}
	}
	return &sender{dialer: d, roots: roots}
}

func (sn *sender) httpClient() *http.Client {
	var pool *x509.CertPool
	if sn.roots != nil {
		pool = sn.roots()
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.client != nil && pool == sn.pool {
		return sn.client
	}
	if sn.client != nil {
		sn.client.CloseIdleConnections()
	}
	sn.pool = pool
	sn.client = &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: the provider connects to the
			// callback directly, and a local callback must not detour.
			Proxy:               nil,
			DialContext:         sn.dialer.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
		// A redirect is an answer other than 200: it counts as a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return sn.client
}

// post sends one delivery attempt and returns the HTTP status.
func (sn *sender) post(ctx context.Context, target string, body []byte, activationCode string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("bad callback URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "qrphgate-sandbox")
	if activationCode != "" {
		req.Header.Set("activation-code", activationCode)
	}
	resp, err := sn.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // drop the URL, whose query may carry a token
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, errors.New("no answer within 10s")
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// deliveryJob is one webhook delivery with everything it needs captured
// when the payment was simulated.
type deliveryJob struct {
	d              *delivery
	body           []byte
	activationCode string
	sender         *sender
	intervals      []time.Duration
	log            *zap.Logger
	observe        Observer
}

// runDelivery makes the first attempt at once and retries a failure after
// each of the intervals (the provider: 4 attempts, 15 minutes apart). Only
// 200 OK ends it, as the docs say. It stops early when the webhook is
// deleted or disabled, and when the Store closes.
func (st *Store) runDelivery(job deliveryJob) {
	defer st.wg.Done()
	defer func() {
		st.mu.Lock()
		st.inflight--
		st.mu.Unlock()
	}()
	d := job.d
	for i := 0; ; i++ {
		start := st.clk.Now()
		status, err := job.sender.post(st.ctx, d.URL, job.body, job.activationCode)
		a := Attempt{At: start, Status: status}
		if err != nil {
			a.Error = err.Error()
		}
		ok := err == nil && status == http.StatusOK
		outcome := "failed"
		if ok {
			outcome = "delivered"
		}
		job.observe.Attempt(outcome)
		job.log.Info("simulated webhook delivery attempt",
			zap.String("webhook_id", d.WebhookID), zap.Int("attempt", i+1), zap.Int("status", status),
			zap.String("error", a.Error), zap.String("callback", redactURL(d.URL)))
		st.mu.Lock()
		if len(d.Attempts) < maxAttemptsKept {
			d.Attempts = append(d.Attempts, a)
		}
		switch {
		case ok:
			d.State = DeliveryDelivered
		case st.ctx.Err() != nil:
			d.State = DeliveryCancelled
		case i >= len(job.intervals):
			d.State = DeliveryFailed
		default:
			d.NextAt = st.clk.Now().Add(job.intervals[i])
		}
		done := d.State != DeliveryPending
		st.mu.Unlock()
		if done {
			return
		}
		if clock.Sleep(st.ctx, st.clk, job.intervals[i]) != nil {
			st.setState(d, DeliveryCancelled)
			return
		}
		if !st.webhookActive(d.WebhookID) {
			st.setState(d, DeliveryCancelled)
			return
		}
	}
}

func (st *Store) setState(d *delivery, state string) {
	st.mu.Lock()
	d.State = state
	st.mu.Unlock()
}

// webhookActive reports whether a webhook still exists and is enabled.
func (st *Store) webhookActive(id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.webhooks[id]
	return h != nil && h.Status == "ENABLED"
}
