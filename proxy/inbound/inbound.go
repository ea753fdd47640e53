package inbound

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// Results of a received webhook. Each is the error code of the JSON answer
// (for rejections) and the "result" label of the received-webhooks metric.
const (
	ResultAccepted         = "accepted"
	ResultDuplicate        = "duplicate"
	ResultForbiddenIP      = "forbidden_ip"
	ResultMethodNotAllowed = proxy.CodeMethodNotAllowed
	ResultUnsupportedMedia = proxy.CodeUnsupportedMedia
	ResultBodyTooLarge     = proxy.CodeBodyTooLarge
	ResultUnreadableBody   = "unreadable_body"
	ResultBadEnvelope      = "bad_envelope"
	ResultBadToken         = "bad_token"
	ResultDecryptFailed    = "decrypt_failed"
	ResultInvalidPayload   = "invalid_payload"
	ResultForbiddenActCode = "forbidden_activation_code"
	ResultSpoolUnavailable = "spool_unavailable"
	ResultInProgress       = "in_progress"
	ResultRateLimited      = "rate_limited"
	ResultRequestTimeout   = "request_timeout"
)

const (
	maxActivationCodeLen = 128
	// The answers to the provider: fixed, so nothing from the request can
	// leak into them.
	receivedBody          = `{"received":true}` + "\n"
	receivedDuplicateBody = `{"received":true,"duplicate":true}` + "\n"
)

// Defaults of the receiving pipeline.
const (
	DefaultMaxWebhookBody = 64 << 10
	DefaultDedupeWindow   = 72 * time.Hour
)

// Results lists every result, for pre-creating metrics.
var Results = []string{
	ResultAccepted, ResultDuplicate, ResultForbiddenIP, ResultMethodNotAllowed, ResultUnsupportedMedia,
	ResultBodyTooLarge, ResultUnreadableBody, ResultBadEnvelope, ResultBadToken, ResultDecryptFailed,
	ResultInvalidPayload, ResultForbiddenActCode, ResultSpoolUnavailable, ResultInProgress,
	ResultRateLimited, ResultRequestTimeout,
}

// Config configures the webhook receiving pipeline.
type Config struct {
	// Keyring holds the decryption keys, tried in order. Required.
	Keyring *crypto.Keyring

	// AllowIPs lists the addresses webhooks may come from; the zero value
	// allows none (allowing all takes an explicit "any").
	AllowIPs policy.IPAllowlist

	// ActivationCodes, when not empty, are the values the activation-code
	// header must have (a missing header is refused too).
	ActivationCodes []string

	// MaxBody caps the request body; 64 KiB when zero.
	MaxBody int64

	// DedupeWindow is how long an event, (merchant, action, reference,
	// transaction id) from the decrypted payload, is remembered; 72h when
	// zero.
	DedupeWindow time.Duration

	// ActionFields are the payload members that carry the action, tried in
	// order; the defaults when nil.
	ActionFields []string

	// ReferenceFields are the payload members that carry the reference,
	// tried in order; the defaults when nil.
	ReferenceFields []string

	// Spool stores accepted events durably. Required.
	Spool store.Spool

	// Dedupe remembers accepted events. Required.
	Dedupe store.Dedupe

	// Clock is the time source; clock.Real() when nil.
	Clock clock.Clock

	// Logger receives the pipeline's logs; zap.NewNop() when nil.
	Logger *zap.Logger

	// OnAccepted, when set, is called after an event is spooled (to wake
	// the deliverer).
	OnAccepted func()

	// Observer receives every webhook's result (metrics); NopObserver when
	// nil.
	Observer Observer

	// Auditor receives every webhook's result for the audit trail
	// (accepted, duplicate, refused with its code); proxy.NopAuditor when
	// nil.
	Auditor proxy.Auditor

	// Ledger, when set, is told every accepted webhook's result before it
	// is spooled, and its reconciliation flags go with the delivery.
	Ledger Ledger

	// Limiter counts the rate limits (RateLimit, RateLimitPerIP); nil
	// means none. See limit.go.
	Limiter *proxy.WindowLimiter

	// RateLimit caps the webhooks from all allowed addresses together, per
	// fixed window; DefaultRateLimit when zero.
	RateLimit policy.RateLimit

	// RateLimitPerIP caps the webhooks from each address, per fixed
	// window; DefaultRateLimitPerIP when zero.
	RateLimitPerIP policy.RateLimit

	// ReadTimeout bounds the time to receive the body once the checks
	// before it passed; DefaultReadTimeout when zero.
	ReadTimeout time.Duration
}

// Handler receives the provider's webhooks: it checks, in order and each
// failing fast, the client IP, rate limits, method, content type, size (and
// the body's read deadline), envelope, JWE header, decryption, payload
// shape and activation code; then
// de-duplicates, spools durably and acknowledges. It never forwards
// anything itself: the Deliverer does, from the spool.
type Handler struct {
	cfg Config
	log *zap.Logger
}

// New checks cfg and applies its defaults.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Keyring == nil:
		return nil, errors.New("inbound: a keyring is required")
	case cfg.Spool == nil:
		return nil, errors.New("inbound: a spool is required")
	case cfg.Dedupe == nil:
		return nil, errors.New("inbound: a dedupe store is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxWebhookBody
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if len(cfg.ActionFields) == 0 {
		cfg.ActionFields = DefaultActionFields
	}
	if len(cfg.ReferenceFields) == 0 {
		cfg.ReferenceFields = DefaultReferenceFields
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Auditor == nil {
		cfg.Auditor = proxy.NopAuditor{}
	}
	cfg.applyDefenceDefaults()
	return &Handler{cfg: cfg, log: cfg.Logger}, nil
}

// ServeWebhook handles one webhook from client, the address the server
// resolved (Caddy's client IP, which honours trusted proxies); an invalid
// address is refused.
func (in *Handler) ServeWebhook(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	start := in.cfg.Clock.Now()
	note := proxy.AuditEvent{Remote: client.String()}
	result, err := in.receive(w, r, client, start, &note)
	h := w.Header()
	if closesConnection(result) {
		h.Set("Connection", "close")
	}
	if err != nil {
		proxy.WriteError(w, err)
	} else {
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		body := receivedBody
		if result == ResultDuplicate {
			body = receivedDuplicateBody
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, body)
	}
	in.cfg.Observer.Received(result, in.cfg.Clock.Now().Sub(start))
	in.audit(result, note)
}

// audit reports a webhook's result to the audit trail: accepted (with
// its event id), duplicate, or refused with its code.
func (in *Handler) audit(result string, note proxy.AuditEvent) {
	switch result {
	case ResultAccepted:
		note.Event = proxy.AuditWebhookAccepted
	case ResultDuplicate:
		note.Event = proxy.AuditWebhookDuplicate
	default:
		note.Event, note.Code = proxy.AuditWebhookRefused, result
	}
	in.cfg.Auditor.Audit(note)
}

func reject(status int, result, msg string, cause error) (string, error) {
	return result, &proxy.Error{Status: status, Code: result, Message: msg, Err: cause}
}

// receive runs the check order and, when every check passes, spools the
// event. It returns the result and, for a rejection, the error to answer;
// what identifies the payment, once known, goes in note.
func (in *Handler) receive(w http.ResponseWriter, r *http.Request, client netip.Addr, start time.Time, note *proxy.AuditEvent) (string, error) {
	log := in.log.WithLazy(zap.String("client_ip", client.String()))
	if !client.IsValid() || !in.cfg.AllowIPs.Contains(client) {
		log.Debug("webhook from an address not in allow_ips")
		return reject(http.StatusForbidden, ResultForbiddenIP, "source address not allowed", nil)
	}
	if result, err := in.limit(r.Context(), log, client); err != nil {
		return result, err
	}
	if r.Method != http.MethodPost {
		return in.refuse(log, http.StatusMethodNotAllowed, ResultMethodNotAllowed, "webhooks must be POSTed", nil)
	}
	if !proxy.IsJSONMediaType(r.Header.Get("Content-Type")) {
		return in.refuse(log, http.StatusUnsupportedMediaType, ResultUnsupportedMedia, "content type must be application/json", nil)
	}
	if r.ContentLength > in.cfg.MaxBody {
		return in.refuse(log, http.StatusRequestEntityTooLarge, ResultBodyTooLarge, "body exceeds max_body", nil)
	}
	body, err := in.readBody(w, r)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return in.refuse(log, http.StatusRequestEntityTooLarge, ResultBodyTooLarge, "body exceeds max_body", nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return in.refuse(log, http.StatusRequestTimeout, ResultRequestTimeout, "the body did not arrive within read_timeout", nil)
	case err != nil:
		return in.refuse(log, http.StatusBadRequest, ResultUnreadableBody, "could not read the body", err)
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		return in.refuse(log, http.StatusBadRequest, ResultBadEnvelope, err.Error(), nil)
	}
	opened, err := in.cfg.Keyring.Decrypt(env.Token)
	if err != nil {
		// The shape of the token (never the token) helps tell a truncated
		// or foreign token from a key mismatch.
		log = log.WithLazy(zap.String("token", crypto.RedactToken(env.Token)))
	}
	switch {
	case errors.Is(err, crypto.ErrDecrypt):
		return in.refuse(log, http.StatusBadRequest, ResultDecryptFailed, "no configured key decrypts the token", err)
	case err != nil:
		// Shape and header errors: size, segments, alg, enc, zip, crit.
		return in.refuse(log, http.StatusBadRequest, ResultBadToken, "token refused: "+strings.TrimPrefix(err.Error(), "jwe: "), nil)
	}
	payload, err := ParsePayload(opened.Plaintext, in.cfg.ActionFields, in.cfg.ReferenceFields)
	if err != nil {
		return in.refuse(log, http.StatusUnprocessableEntity, ResultInvalidPayload, err.Error(), nil)
	}
	note.Action, note.Reference, note.TransactionID = payload.Action, payload.Reference, payload.TransactionID
	log = log.WithLazy(proxy.LogString("action", payload.Action), proxy.LogString("reference", payload.Reference))
	if payload.TransactionID != "" {
		log = log.WithLazy(proxy.LogString("transaction_id", payload.TransactionID))
	}
	code, ok := in.activationCode(r.Header)
	if !ok {
		return in.refuse(log, http.StatusForbidden, ResultForbiddenActCode, "activation-code header not accepted", nil)
	}
	return in.accept(r.Context(), log, env, payload, code, opened, start, note)
}

// refuse logs a rejection that passed the IP check (so it comes from an
// allowed sender and is worth an operator's attention) and returns it.
func (in *Handler) refuse(log *zap.Logger, status int, result, msg string, cause error) (string, error) {
	fields := []zap.Field{zap.String("result", result), zap.String("reason", msg)}
	if cause != nil {
		fields = append(fields, proxy.LogString("cause", cause.Error()))
	}
	log.Warn("webhook rejected", fields...)
	return reject(status, result, msg, cause)
}

// activationCode returns the header's value to forward, and whether the
// webhook may pass. With activation_codes configured the header must be one
// of them; otherwise a well-formed header is passed on and a malformed one
// dropped (it is an unauthenticated echo, never proof of anything).
func (in *Handler) activationCode(h http.Header) (string, bool) {
	values := h.Values(proxy.HeaderActivationCode)
	var code string
	if len(values) == 1 && ValidActivationCodeHeader(values[0]) {
		code = values[0]
	}
	if len(in.cfg.ActivationCodes) > 0 {
		return code, code != "" && slices.Contains(in.cfg.ActivationCodes, code)
	}
	return code, true
}

// ValidActivationCodeHeader reports whether s can be an activation-code
// header value: 1-128 visible ASCII characters (the docs show both
// A9X4-B7P2-Q6Z8-M3L5 and MERCHANT_ABC_123).
func ValidActivationCodeHeader(s string) bool {
	if s == "" || len(s) > maxActivationCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// accept de-duplicates and spools a verified event. The dedupe mark is
// taken first (so that concurrent copies race on it, not on the spool) and
// dropped again if the spool write fails, so the provider's retry is not
// mistaken for a duplicate of an event that was never stored. A copy that
// finds the mark reserved but its event not stored yet (store.ErrPending,
// perhaps on another replica) is told to retry: acknowledging it as a
// duplicate would lose the payment if that store then fails. start is when
// the request arrived: the accept log's latency runs from it to the
// acknowledgment (the durable spool write included).
func (in *Handler) accept(ctx context.Context, log *zap.Logger, env Envelope, p Payload, code string, opened crypto.Opened, start time.Time, note *proxy.AuditEvent) (string, error) {
	// The provider may hang up after sending; finish the write regardless.
	ctx = context.WithoutCancel(ctx)
	now := in.cfg.Clock.Now()
	key := p.DedupeKey()
	added, err := in.cfg.Dedupe.Add(ctx, key, in.cfg.DedupeWindow)
	if errors.Is(err, store.ErrPending) {
		log.Info("a copy of this webhook is still being stored; answering 503 so the provider retries")
		return ResultInProgress, &proxy.Error{Status: http.StatusServiceUnavailable, Code: ResultInProgress,
			Message: "a copy of this event is being stored; retry later", RetryAfter: time.Minute}
	}
	if err != nil {
		// Fail open: a possible duplicate delivery is better than a lost
		// payment notification.
		log.Warn("de-duplication unavailable; accepting without it", zap.Error(err))
		added = true
	} else if !added {
		log.Info("duplicate webhook acknowledged, not delivered again")
		return ResultDuplicate, nil
	} else if in.seenUnderEarlierKey(ctx, log, p, code) {
		// New under its own key, but an earlier release stored it: drop
		// the reservation just taken, which no Put will follow.
		if rerr := in.cfg.Dedupe.Remove(ctx, key); rerr != nil {
			log.Warn("could not drop the de-duplication reservation of a duplicate", zap.Error(rerr))
		}
		log.Info("duplicate webhook (stored before the upgrade) acknowledged, not delivered again")
		return ResultDuplicate, nil
	}
	ev := store.SpoolEvent{
		ID:             NewEventID(now),
		Action:         p.Action,
		Reference:      p.Reference,
		ActivationCode: code,
		Body:           opened.Plaintext,
		Received:       now,
		RetryFrom:      now,
		NextAttempt:    now,
		DedupeKey:      key,
		DedupeUntil:    now.Add(in.cfg.DedupeWindow),
	}
	ev.Reconciliation = in.reconcile(ctx, log, ev, p, opened.Plaintext)
	if err := in.cfg.Spool.Put(ctx, ev); err != nil {
		if rerr := in.cfg.Dedupe.Remove(ctx, key); rerr != nil {
			log.Error("could not drop the dedupe mark of an event that was not spooled", zap.Error(rerr))
		}
		log.Error("webhook not spooled; answering 503 so the provider retries", zap.Error(err))
		return ResultSpoolUnavailable, &proxy.Error{Status: http.StatusServiceUnavailable, Code: ResultSpoolUnavailable,
			Message: "the event could not be stored; retry later", Err: err}
	}
	note.EventID = ev.ID
	log.Info("webhook accepted", zap.String("event_id", ev.ID), zap.Int("status", http.StatusOK),
		zap.Duration("latency", in.cfg.Clock.Now().Sub(start)), zap.String("key", opened.KeyName),
		zap.String("envelope_field", env.Field), zap.Bool("activation_code", code != ""))
	if in.cfg.OnAccepted != nil {
		in.cfg.OnAccepted()
	}
	return ResultAccepted, nil
}
