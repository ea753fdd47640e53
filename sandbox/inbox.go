package sandbox

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// maxInboxBody bounds one delivery to the demo inbox.
const maxInboxBody = 64 << 10

// Signature states of an inbox entry.
const (
	SignatureVerified  = "verified"
	SignatureInvalid   = "invalid"
	SignatureMissing   = "missing"
	SignatureUnchecked = "unchecked" // no inbox_sign_secret configured
)

// InboxEntry is one delivery the demo app received, as GET /sandbox/inbox
// lists it.
type InboxEntry struct {
	Seq            int             `json:"seq"`
	ReceivedAt     time.Time       `json:"receivedAt"`
	WebhookID      string          `json:"webhookId"`
	Timestamp      string          `json:"webhookTimestamp,omitempty"`
	Attempt        string          `json:"webhookAttempt,omitempty"`
	ActivationCode string          `json:"activationCode,omitempty"`
	Signature      string          `json:"signature"`
	Accepted       bool            `json:"accepted"`
	Duplicate      bool            `json:"duplicate"`
	Body           json.RawMessage `json:"body"`
}

// receiveInbox is POST /sandbox/inbox: the demo app's webhook endpoint, in
// the gateway's delivery format (the decrypted JSON verbatim, with
// Webhook-Id, Webhook-Timestamp, Webhook-Attempt, optional
// Webhook-Signature and Modulus-Activation-Code). It answers 200
// {"received":true}; a delivery whose signature fails (when
// inbox_sign_secret is set) is listed but refused with 401, as a real app
// would refuse it.
func (s *Simulator) receiveInbox(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "Content-Type must be application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInboxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		} else {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body could not be read"})
		}
		return
	}
	if !isJSONObject(body) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON object"})
		return
	}
	if _, isProviderFormat := envelopeData(body); isProviderFormat {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `this is the provider's encrypted {"data": JWE} format: ` +
			"register modulus_webhook's URL as the callback; it decrypts and delivers the JSON here"})
		return
	}
	id := r.Header.Get("Webhook-Id")
	if id == "" || len(id) > 256 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Webhook-Id header is required (deliveries come from modulus_webhook)"})
		return
	}
	e := InboxEntry{
		WebhookID: id, Timestamp: r.Header.Get("Webhook-Timestamp"), Attempt: r.Header.Get("Webhook-Attempt"),
		ActivationCode: r.Header.Get("Modulus-Activation-Code"), Signature: SignatureUnchecked, Accepted: true,
		Body: json.RawMessage(body),
	}
	if s.inboxSigner != nil {
		switch sig := r.Header.Get("Webhook-Signature"); {
		case sig == "":
			e.Signature, e.Accepted = SignatureMissing, false
		case s.inboxSigner.Verify(id, e.Timestamp, body, sig):
			e.Signature = SignatureVerified
		default:
			e.Signature, e.Accepted = SignatureInvalid, false
		}
	}
	st := s.store
	st.mu.Lock()
	e.ReceivedAt = s.clk.Now()
	st.inboxSeq++
	e.Seq = st.inboxSeq
	if e.Accepted {
		e.Duplicate = st.inboxSeen[id] > 0
		st.inboxSeen[id]++
	}
	st.inbox = append(st.inbox, e)
	if len(st.inbox) > maxInbox {
		drop := st.inbox[0]
		st.inbox = st.inbox[1:]
		if drop.Accepted {
			if st.inboxSeen[drop.WebhookID]--; st.inboxSeen[drop.WebhookID] <= 0 {
				delete(st.inboxSeen, drop.WebhookID)
			}
		}
	}
	st.mu.Unlock()
	if !e.Accepted {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Webhook-Signature " + e.Signature})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
}

// listInbox is GET /sandbox/inbox: {"entries": [...]}, oldest first.
func (s *Simulator) listInbox(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"entries": s.store.inboxEntries()})
}

func (st *Store) inboxEntries() []InboxEntry {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]InboxEntry{}, st.inbox...)
}

// clearInbox is DELETE /sandbox/inbox (the page's Clear button).
func (s *Simulator) clearInbox(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
		return
	}
	st := s.store
	st.mu.Lock()
	st.inbox = nil
	st.inboxSeen = make(map[string]int)
	st.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
