package sandbox

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Use cases of the simulate call. The docs list SUCCESS and DECLINED in one
// version and SUCCESS plus three declined variants in another; every
// use case other than SUCCESS is a decline, and the policy lists them all.
const (
	UseCaseSuccess  = "SUCCESS"
	UseCaseDeclined = "DECLINED"
)

// Webhook actions.
const (
	ActionSuccess  = "QRPH_SUCCESS"
	ActionDeclined = "QRPH_DECLINED"
)

// maxEventsPerQR bounds the simulated outcomes kept per QR (each simulate
// call on a settled QR resends its webhook, as a duplicate delivery would).
const maxEventsPerQR = 20

// WebhookPayload is the decrypted body of a simulated webhook. The
// provider's pages describe two payloads (action, referenceNumber, amount
// in centavos, currency, timestamp on one; transactionId and status on
// another); the simulator sends the union, so a receiver written against
// either page works.
type WebhookPayload struct {
	// Action is QRPH_SUCCESS or QRPH_DECLINED.
	Action string `json:"action"`
	// Status is SUCCESS or DECLINED.
	Status string `json:"status"`
	// Reason is the declined variant's use case (DECLINED,
	// MISSING_DESTINATION_ACCOUNT, ...); absent on success.
	Reason string `json:"reason,omitempty"`
	// TransactionID is the id create-QR answered.
	TransactionID string `json:"transactionId"`
	// ReferenceNumber is the merchantReferenceNumber of the QR.
	ReferenceNumber string `json:"referenceNumber"`
	// Amount is in the smallest currency unit (centavos), unlike the
	// create request's decimal string.
	Amount int64 `json:"amount"`
	// Currency is the ISO 4217 code.
	Currency string `json:"currency"`
	// Timestamp is when the payment was simulated, RFC 3339 UTC.
	Timestamp string `json:"timestamp"`
}

// simulateAnswer is what both the simulate call and the page buttons
// answer; the simulate call sends only ID, as the provider does.
type simulateAnswer struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Deliveries int    `json:"deliveries"`
}

// simulateError is a refusal with its provider error.
type simulateError struct {
	status    int
	code, msg string
}

// simulate is POST /v1/webhooks/qrph/simulate {qrBody, useCase} → {id}.
func (s *Simulator) simulate(w http.ResponseWriter, r *http.Request) {
	f, ok := s.webhookBody(w, r, []string{"qrBody", "useCase"})
	if !ok {
		return
	}
	if f["qrBody"] == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequestBody, "qrBody is required: the raw QR Ph text or the transaction id")
		return
	}
	ans, serr := s.fire(f["qrBody"], f["useCase"], false, stated{})
	if serr != nil {
		writeError(w, serr.status, serr.code, serr.msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": ans.ID})
}

// payButton is POST /sandbox/qr/{id}/pay and /decline: what the page's
// buttons do, with no credentials (the page is a local sandbox tool).
func (s *Simulator) payButton(useCase string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, CodeBadRequestBody, "cross-origin request refused")
			return
		}
		as, serr := statedFrom(r)
		if serr != nil {
			writeError(w, serr.status, serr.code, serr.msg)
			return
		}
		ans, serr := s.fire(r.PathValue("id"), useCase, true, as)
		if serr != nil {
			writeError(w, serr.status, serr.code, serr.msg)
			return
		}
		writeJSON(w, http.StatusOK, ans)
	}
}

// sameOrigin refuses a browser request sent from another site's page (a
// form or fetch to localhost): such requests carry an Origin header naming
// that site. curl and the page itself pass.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	return o == "http://"+r.Host || o == "https://"+r.Host
}

// fire records the outcome useCase for the QR named by qrBody (its raw
// EMVCo text or its transaction id; only the id when byID) and sends the
// webhook to every enabled webhook registered for the action; the webhook
// states the QR's amount and currency unless st says otherwise.
func (s *Simulator) fire(qrBody, useCase string, byID bool, as stated) (simulateAnswer, *simulateError) {
	if !slices.Contains(s.pol.Webhooks.SimulateUseCases, useCase) {
		return simulateAnswer{}, &simulateError{http.StatusBadRequest, CodeInvalidUseCase,
			"useCase must be one of " + strings.Join(s.pol.Webhooks.SimulateUseCases, ", ")}
	}
	action, status, outcome, reason := ActionSuccess, UseCaseSuccess, StatusPaid, ""
	if useCase != UseCaseSuccess {
		action, status, outcome, reason = ActionDeclined, UseCaseDeclined, StatusDeclined, useCase
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	var q *qrRecord
	if byID {
		q = st.qrs[qrBody]
	} else {
		q = st.findQR(qrBody)
	}
	switch {
	case q == nil && byID:
		return simulateAnswer{}, &simulateError{http.StatusNotFound, CodeQRNotFound, "No QR with this id"}
	case q == nil:
		return simulateAnswer{}, notFound(qrBody)
	}
	now := s.clk.Now()
	switch cur := q.status(now); {
	case cur == StatusExpired:
		return simulateAnswer{}, &simulateError{http.StatusBadRequest, CodeQRExpired, "QR has expired (validity " + s.validity.String() + ")"}
	case cur != StatusPending && cur != outcome:
		return simulateAnswer{}, &simulateError{http.StatusConflict, CodeQRSettled, "QR is already " + strings.ToLower(cur)}
	}
	var targets []*webhook
	for _, id := range st.hookOrder {
		if h := st.webhooks[id]; h.Action == action && h.Status == "ENABLED" {
			targets = append(targets, h)
		}
	}
	if st.closed {
		return simulateAnswer{}, &simulateError{http.StatusServiceUnavailable, CodeBusy, "simulator is shutting down"}
	}
	if st.inflight+len(targets) > maxInflight {
		return simulateAnswer{}, &simulateError{http.StatusServiceUnavailable, CodeBusy, "too many webhook deliveries in flight; try again later"}
	}
	payload, _ := json.Marshal(WebhookPayload{
		Action: action, Status: status, Reason: reason, TransactionID: q.ID, ReferenceNumber: q.Reference,
		Amount: as.amountOr(int64(q.Amount)), Currency: cmp.Or(as.currency, q.Currency), Timestamp: now.UTC().Format(time.RFC3339),
	})
	token, err := s.sealer.Encrypt(payload)
	if err != nil {
		s.log.Error("sealing a webhook failed", zap.Error(err))
		return simulateAnswer{}, &simulateError{http.StatusInternalServerError, CodeSimulatedFault, "webhook encryption failed"}
	}
	body, _ := json.Marshal(map[string]string{"data": token})
	q.Status = outcome
	ev := &event{ID: newUUID(), Action: action, UseCase: useCase, At: now}
	for _, h := range targets {
		d := &delivery{WebhookID: h.ID, URL: h.CallbackURL, State: DeliveryPending, NextAt: now}
		ev.Deliveries = append(ev.Deliveries, d)
		st.inflight++
		st.wg.Add(1)
		go st.runDelivery(deliveryJob{
			d: d, body: body, activationCode: h.ActivationCode, sender: s.sender,
			intervals: s.retries, log: s.log, observe: s.cfg.Observer,
		})
	}
	q.Events = append(q.Events, ev)
	if len(q.Events) > maxEventsPerQR {
		q.Events = q.Events[len(q.Events)-maxEventsPerQR:]
	}
	s.log.Info("simulated payment outcome",
		zap.String("transaction_id", q.ID), zap.String("reference", q.Reference),
		zap.String("action", action), zap.String("use_case", useCase), zap.Int("webhooks", len(targets)))
	return simulateAnswer{ID: q.ID, Status: outcome, Deliveries: len(targets)}, nil
}

// notFound explains a qrBody that names no QR: the commonest mistake is to
// send the base64 PNG (create-QR's qrBody) instead of the text inside it.
func notFound(qrBody string) *simulateError {
	if _, err := ParsePayload(qrBody); err != nil && len(qrBody) != 36 {
		msg := "qrBody must be the raw QR Ph text decoded from the QR image, or the transaction id"
		if errors.Is(err, ErrCRCMismatch) {
			msg = "qrBody is QR Ph text with a wrong CRC (was it altered?)"
		}
		return &simulateError{http.StatusBadRequest, CodeBadRequestBody, msg}
	}
	return &simulateError{http.StatusNotFound, CodeQRNotFound, "No QR with this qrBody was created in this sandbox"}
}
