package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/policy"
)

// maxCreateBody bounds a create-QR request: a token of at most
// crypto.DefaultMaxTokenBytes in a small JSON object.
const maxCreateBody = crypto.DefaultMaxTokenBytes + 1024

// createQRAnswer is the plaintext of the provider's answer token.
type createQRAnswer struct {
	ID     string `json:"id"`
	QRBody string `json:"qrBody"`
}

// createQR is POST /v1/pay/qr: {"Token": JWE} in, {"Token": JWE} out.
func (s *Simulator) createQR(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSONBody(w, r, maxCreateBody)
	if !ok {
		return
	}
	tok, ok := envelopeToken(body)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadRequestBody, `Request body must be a JSON object {"Token": "<JWE>"}`)
		return
	}
	opened, err := s.keyring.Decrypt(tok)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeTokenUndecryptable, "Token cannot be decrypted: "+tokenProblem(err))
		return
	}
	q, ok := s.createFrom(w, opened.Plaintext, "")
	if !ok {
		return
	}
	answer, _ := json.Marshal(createQRAnswer{ID: q.ID, QRBody: base64.StdEncoding.EncodeToString(q.PNG)})
	sealed, err := s.sealer.Encrypt(answer)
	if err != nil {
		s.log.Error("sealing the create-QR answer failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, CodeSimulatedFault, "answer encryption failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"Token": sealed})
}

// createFrom validates a create-QR plaintext exactly as the provider
// documents it (every field required; defaultCode fills a missing
// activationCode when not empty), then creates the QR. On failure it has
// answered the provider error.
func (s *Simulator) createFrom(w http.ResponseWriter, plaintext []byte, defaultCode string) (*qrRecord, bool) {
	req, err := policy.DecodeCreateQR(plaintext)
	if err == nil && req.ActivationCode == "" {
		req.ActivationCode = defaultCode
		if defaultCode == "" {
			err = &policy.Error{Code: policy.CodeMissingField, Field: "activationCode", Message: "is required"}
		}
	}
	var amount policy.Centavos
	if err == nil {
		amount, err = s.pol.ValidateCreateQR(s.env, req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeValidation, validationMessage(err))
		return nil, false
	}
	if len(s.merchants) > 0 && !slices.Contains(s.merchants, req.ActivationCode) {
		writeError(w, http.StatusBadRequest, CodeUnknownMerchant, "activationCode is not a merchant of this account")
		return nil, false
	}
	q, err := s.newQR(req, amount)
	if err != nil {
		s.log.Error("creating a simulated QR failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, CodeSimulatedFault, "QR generation failed")
		return nil, false
	}
	return q, true
}

// PageMerchant is the activation code the page's form uses when no
// activation_codes are configured.
const PageMerchant = "SBOX-0000-0000-0001"

// createFromPage is POST /sandbox/qr, the page's "Create a test QR" form:
// the create-QR plaintext as plain JSON, without credentials or JWE (the
// page is a local tool), validated the same way; activationCode defaults
// to the first configured merchant. It answers {"id"}.
func (s *Simulator) createFromPage(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, CodeBadRequestBody, "cross-origin request refused")
		return
	}
	body, ok := readJSONBody(w, r, 4096)
	if !ok {
		return
	}
	code := PageMerchant
	if len(s.merchants) > 0 {
		code = s.merchants[0]
	}
	q, ok := s.createFrom(w, body, code)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": q.ID})
}

// newQR builds, renders and stores a QR for a validated request.
func (s *Simulator) newQR(req policy.CreateQR, amount policy.Centavos) (*qrRecord, error) {
	id := newUUID()
	payload, err := BuildPayload(PaymentQR{TransactionID: id, Reference: req.MerchantReferenceNumber, Amount: amount, Currency: req.Currency})
	if err != nil {
		return nil, err
	}
	img, err := RenderPNG(payload)
	if err != nil {
		return nil, err
	}
	now := s.clk.Now()
	q := &qrRecord{
		ID: id, Reference: req.MerchantReferenceNumber, Amount: amount, Currency: req.Currency,
		ActivationCode: req.ActivationCode, Payload: payload, PNG: img,
		CreatedAt: now, ExpiresAt: now.Add(s.validity), Status: StatusPending,
	}
	s.store.mu.Lock()
	s.store.addQR(q)
	s.store.mu.Unlock()
	s.log.Info("simulated QR created",
		zap.String("transaction_id", q.ID), zap.String("reference", q.Reference),
		zap.String("amount", q.Amount.String()), zap.String("currency", q.Currency))
	return q, nil
}

// readJSONBody reads a bounded JSON request body, answering the provider
// error itself when it cannot.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusBadRequest, CodeBadRequestBody, "Content-Type must be application/json")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequestBody, fmt.Sprintf("Request body exceeds %d bytes", limit))
		} else {
			writeError(w, http.StatusBadRequest, CodeBadRequestBody, "Request body could not be read")
		}
		return nil, false
	}
	return body, true
}

// envelopeToken returns the JWE of a {"Token": "..."} body: a JSON object
// whose only member is Token (case-sensitive) holding a string.
func envelopeToken(body []byte) (string, bool) { return envelope(body, "Token") }

// envelopeData is envelopeToken for a webhook's {"data": "..."}.
func envelopeData(body []byte) (string, bool) { return envelope(body, "data") }

func envelope(body []byte, member string) (string, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || len(obj) != 1 {
		return "", false
	}
	raw, ok := obj[member]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var tok string
	if json.Unmarshal(raw, &tok) != nil {
		return "", false
	}
	return tok, true
}

// tokenProblem says what is wrong with a token, in the crypto package's
// words (which never contain key material or the token).
func tokenProblem(err error) string {
	for _, e := range []error{crypto.ErrTokenEmpty, crypto.ErrTokenTooLarge, crypto.ErrAlgorithm, crypto.ErrEncryption, crypto.ErrCompression, crypto.ErrMalformed} {
		if errors.Is(err, e) {
			return err.Error()
		}
	}
	return "wrong key or tampered token"
}

// validationMessage renders a policy error as the message of a provider
// error: the field and rule, then the stable code in brackets.
func validationMessage(err error) string {
	var pe *policy.Error
	if errors.As(err, &pe) {
		return pe.Error() + " [" + pe.Code + "]"
	}
	return err.Error()
}

// isJSONObject reports whether b is one JSON object and nothing else.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var v map[string]json.RawMessage
	return json.Unmarshal(b, &v) == nil
}
