package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/store"
)

func init() {
	addAdminRoute("/modulus/dead-letters", handleDeadLetters)
	addAdminRoute("/modulus/dead-letters/{id}/replay", handleReplay)
}

const (
	defaultDeadLetterLimit = 100
	maxDeadLetterLimit     = 1000
)

// deadLetter is one entry of GET /modulus/dead-letters. The body is not
// listed: it is a decrypted payment payload.
type deadLetter struct {
	ID        string `json:"id"`
	Spool     string `json:"spool"`
	Action    string `json:"action"`
	Reference string `json:"reference"`
	// ActivationCode is the webhook's activation-code header, masked
	// (policy.MaskActivationCode).
	ActivationCode string    `json:"activation_code,omitempty"`
	Received       time.Time `json:"received"`
	DeadAt         time.Time `json:"dead_at"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error"`
	// Reason is "undecryptable" for an event whose payment part cannot
	// be decrypted with the configured at_rest_key (never delivered).
	Reason string `json:"reason,omitempty"`
}

func toDeadLetter(spool string, ev store.SpoolEvent) deadLetter {
	d := deadLetter{ID: ev.ID, Spool: spool, Action: ev.Action, Reference: ev.Reference, ActivationCode: policy.MaskActivationCode(ev.ActivationCode),
		Received: ev.Received, DeadAt: ev.DeadAt, Attempts: ev.Attempts, LastError: ev.LastError}
	if ev.Undecryptable != "" {
		d.Reason = inbound.DeadLetterUndecryptable
	}
	return d
}

// handleDeadLetters serves GET /modulus/dead-letters[?limit=N][&spool=NAME]:
// the dead letters of every live spool (or one), oldest first, at most
// limit per spool, and the total count.
func handleDeadLetters(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethodNotAllowed}
	}
	limit := defaultDeadLetterLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLetterLimit {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("limit must be 1 to %d", maxDeadLetterLimit)}
		}
		limit = n
	}
	only := r.URL.Query().Get("spool")
	out := struct {
		DeadLetters []deadLetter `json:"dead_letters"`
		Total       int          `json:"total"`
	}{DeadLetters: []deadLetter{}}
	for _, wk := range liveWebhookWorkers() {
		if only != "" && wk.name != only {
			continue
		}
		evs, err := wk.spool.DeadLetters(r.Context(), limit)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("listing dead letters of %s: %w", wk.name, err)}
		}
		for _, ev := range evs {
			out.DeadLetters = append(out.DeadLetters, toDeadLetter(wk.name, ev))
		}
		if st, err := wk.spool.Stats(r.Context()); err == nil {
			out.Total += st.DeadLetters
		}
	}
	return writeAdminJSON(w, http.StatusOK, out)
}

// handleReplay serves POST /modulus/dead-letters/{id}/replay: the dead
// letter goes back to its spool's queue with a fresh redelivery window and
// is attempted at once.
func handleReplay(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errMethodNotAllowed}
	}
	id := r.PathValue("id")
	for _, wk := range liveWebhookWorkers() {
		ev, err := wk.deliverer.Replay(context.WithoutCancel(r.Context()), id, r.RemoteAddr)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("replaying %s: %w", id, err)}
		}
		return writeAdminJSON(w, http.StatusOK, map[string]any{
			"replayed": map[string]any{"id": ev.ID, "spool": wk.name, "reference": ev.Reference, "next_attempt": ev.NextAttempt},
		})
	}
	return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no dead letter %q", proxy.Truncate(id, 64))}
}
