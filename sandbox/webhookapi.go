package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxWebhookBody bounds a webhooks-API request body.
const maxWebhookBody = 64 << 10

// WebhookView is a registered webhook as the simulator answers it. The
// provider documents two shapes (create/update: id, webhookAction,
// webhookStatus, callbackUrl; list: id, webhookUrl, actions[], status,
// createdAt, updatedAt). The simulator sends the create/update shape from
// create and update, and the union of both shapes in the list, so a client
// written against either works. The id is always the UUID string.
type WebhookView struct {
	ID            string `json:"id"`
	WebhookAction string `json:"webhookAction"`
	WebhookStatus string `json:"webhookStatus"`
	CallbackURL   string `json:"callbackUrl"`
}

// WebhookListItem is one webhook in GET /v1/webhooks.
type WebhookListItem struct {
	WebhookView
	WebhookURL     string    `json:"webhookUrl"`
	Actions        []string  `json:"actions"`
	Status         string    `json:"status"`
	ActivationCode string    `json:"activationCode,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

func (h *webhook) view() WebhookView {
	return WebhookView{ID: h.ID, WebhookAction: h.Action, WebhookStatus: h.Status, CallbackURL: h.CallbackURL}
}

func (h *webhook) listItem() WebhookListItem {
	return WebhookListItem{
		WebhookView: h.view(), WebhookURL: h.CallbackURL, Actions: []string{h.Action}, Status: h.Status,
		ActivationCode: h.ActivationCode, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
}

// webhookFields are the members a create or update body may have.
var webhookFields = []string{"callbackUrl", "webhookAction", "webhookStatus"}

// createWebhook is POST /v1/webhooks. webhookStatus may be given (the docs
// speak of creating a webhook DISABLED but list no such field); it
// defaults to ENABLED. The activation-code header is stored and echoed on
// every delivery to this webhook.
func (s *Simulator) createWebhook(w http.ResponseWriter, r *http.Request) {
	f, ok := s.webhookBody(w, r, webhookFields)
	if !ok {
		return
	}
	for _, name := range []string{"callbackUrl", "webhookAction"} {
		if _, ok := f[name]; !ok {
			writeError(w, http.StatusBadRequest, CodeWebhookInvalid, name+" is required")
			return
		}
	}
	if _, ok := f["webhookStatus"]; !ok {
		f["webhookStatus"] = "ENABLED"
	}
	if msg := s.checkWebhookFields(f); msg != "" {
		writeError(w, http.StatusBadRequest, CodeWebhookInvalid, msg)
		return
	}
	code := r.Header.Get("activation-code")
	if len(code) > 64 || strings.IndexFunc(code, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		writeError(w, http.StatusBadRequest, CodeWebhookInvalid, "activation-code header must be at most 64 printable characters")
		return
	}
	now := s.clk.Now()
	h := &webhook{
		ID: newUUID(), Action: f["webhookAction"], Status: f["webhookStatus"], CallbackURL: f["callbackUrl"],
		ActivationCode: code, CreatedAt: now, UpdatedAt: now,
	}
	st := s.store
	st.mu.Lock()
	if msg := st.conflict(h, ""); msg != "" {
		st.mu.Unlock()
		writeError(w, http.StatusConflict, CodeWebhookConflict, msg)
		return
	}
	if len(st.webhooks) >= maxWebhooks {
		st.mu.Unlock()
		writeError(w, http.StatusBadRequest, CodeTooManyWebhooks, fmt.Sprintf("At most %d webhooks can be registered in the sandbox", maxWebhooks))
		return
	}
	st.webhooks[h.ID] = h
	st.hookOrder = append(st.hookOrder, h.ID)
	v := h.view()
	st.mu.Unlock()
	s.log.Info("simulated webhook registered", zap.String("webhook_id", h.ID), zap.String("action", h.Action), zap.String("callback", redactURL(h.CallbackURL)))
	writeJSON(w, http.StatusCreated, v)
}

// conflict reports a webhook with the same callback URL, action and
// activation code ("Webhook URL already registered for this merchant").
// The same URL may serve both actions, as the docs advise. Callers hold
// st.mu.
func (st *Store) conflict(h *webhook, exceptID string) string {
	for _, o := range st.webhooks {
		if o.ID != exceptID && o.CallbackURL == h.CallbackURL && o.Action == h.Action && o.ActivationCode == h.ActivationCode {
			return "Webhook URL already registered for this merchant"
		}
	}
	return ""
}

// preRegister registers each callback for each action unless the same
// registration exists (a reload keeps the account's registry).
func (st *Store) preRegister(callbacks, actions []string, now time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, u := range callbacks {
		for _, action := range actions {
			h := &webhook{ID: newUUID(), Action: action, Status: "ENABLED", CallbackURL: u, CreatedAt: now, UpdatedAt: now}
			if st.conflict(h, "") != "" {
				continue
			}
			if len(st.webhooks) >= maxWebhooks {
				return fmt.Errorf("callbacks: more than %d webhooks", maxWebhooks)
			}
			st.webhooks[h.ID] = h
			st.hookOrder = append(st.hookOrder, h.ID)
		}
	}
	return nil
}

// listWebhooks is GET /v1/webhooks: {"webhooks": [...]}, oldest first.
func (s *Simulator) listWebhooks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": s.store.webhookList()})
}

func (st *Store) webhookList() []WebhookListItem {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]WebhookListItem, 0, len(st.hookOrder))
	for _, id := range st.hookOrder {
		out = append(out, st.webhooks[id].listItem())
	}
	return out
}

// updateWebhook is PUT /v1/webhooks/{id}: a partial update.
func (s *Simulator) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f, ok := s.webhookBody(w, r, webhookFields)
	if !ok {
		return
	}
	if msg := s.checkWebhookFields(f); msg != "" {
		writeError(w, http.StatusBadRequest, CodeWebhookInvalid, msg)
		return
	}
	st := s.store
	st.mu.Lock()
	h, found := st.webhooks[id]
	if !found {
		st.mu.Unlock()
		writeError(w, http.StatusNotFound, CodeWebhookNotFound, MessageWebhookNotFound)
		return
	}
	next := *h
	if v, ok := f["callbackUrl"]; ok {
		next.CallbackURL = v
	}
	if v, ok := f["webhookAction"]; ok {
		next.Action = v
	}
	if v, ok := f["webhookStatus"]; ok {
		next.Status = v
	}
	if msg := st.conflict(&next, id); msg != "" {
		st.mu.Unlock()
		writeError(w, http.StatusConflict, CodeWebhookConflict, msg)
		return
	}
	next.UpdatedAt = s.clk.Now()
	*h = next
	v := h.view()
	st.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

// deleteWebhook is DELETE /v1/webhooks/{id}: 204, or 404 20000004.
// Deliveries to it that are waiting for a retry stop.
func (s *Simulator) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st := s.store
	st.mu.Lock()
	_, found := st.webhooks[id]
	if found {
		delete(st.webhooks, id)
		st.hookOrder = slices.DeleteFunc(st.hookOrder, func(x string) bool { return x == id })
	}
	st.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, CodeWebhookNotFound, MessageWebhookNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookBody reads a webhooks-API body: a JSON object of string members
// named in allowed, sent either plain or, since some versions of the docs
// say so, as {"Token": JWE} whose plaintext is that object.
func (s *Simulator) webhookBody(w http.ResponseWriter, r *http.Request, allowed []string) (map[string]string, bool) {
	body, ok := readJSONBody(w, r, maxWebhookBody)
	if !ok {
		return nil, false
	}
	if tok, isEnvelope := envelopeToken(body); isEnvelope {
		opened, err := s.keyring.Decrypt(tok)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeTokenUndecryptable, "Token cannot be decrypted: "+tokenProblem(err))
			return nil, false
		}
		body = opened.Plaintext
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequestBody, "Request body must be a JSON object")
		return nil, false
	}
	out := make(map[string]string, len(raw))
	for name, v := range raw {
		if !slices.Contains(allowed, name) {
			writeError(w, http.StatusBadRequest, CodeBadRequestBody, fmt.Sprintf("unknown field %.64q; allowed: %s", name, strings.Join(allowed, ", ")))
			return nil, false
		}
		var str string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &str) != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequestBody, name+" must be a string")
			return nil, false
		}
		out[name] = str
	}
	return out, true
}

// checkWebhookFields validates the members present; the message names the
// field and the rule.
func (s *Simulator) checkWebhookFields(f map[string]string) string {
	if v, ok := f["callbackUrl"]; ok {
		if err := checkCallbackURL(v); err != "" {
			return err
		}
	}
	if v, ok := f["webhookAction"]; ok && !slices.Contains(s.pol.Webhooks.Actions, v) {
		return "webhookAction must be one of " + strings.Join(s.pol.Webhooks.Actions, ", ")
	}
	if v, ok := f["webhookStatus"]; ok && !slices.Contains(s.pol.Webhooks.Statuses, v) {
		return "webhookStatus must be one of " + strings.Join(s.pol.Webhooks.Statuses, ", ")
	}
	return ""
}

// checkCallbackURL accepts an absolute http or https URL. The provider
// requires https in production only; the sandbox takes http too, so a
// callback on loopback works without certificates.
func checkCallbackURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case len(raw) > 2048:
		return "callbackUrl must be at most 2048 characters"
	case err != nil || u.Host == "" || u.Opaque != "":
		return "callbackUrl must be an absolute URL such as https://example.com/webhooks"
	case u.Scheme != "https" && u.Scheme != "http":
		return "callbackUrl must use https (or http in the sandbox)"
	case u.User != nil:
		return "callbackUrl must not carry credentials"
	}
	return ""
}

// CheckCallbackURL is the rule POST /v1/webhooks applies to callbackUrl,
// for configuration that names callbacks.
func CheckCallbackURL(raw string) error {
	if msg := checkCallbackURL(raw); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// redactURL keeps scheme, host and path of a callback for logs: a query
// string may carry a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
