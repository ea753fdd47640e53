package outbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// CreateQRResponse is what the app gets for POST /v1/pay/qr.
type CreateQRResponse struct {
	// ID is the provider's transaction id.
	ID string `json:"id"`
	// QRBody is the base64 PNG of the QR, as the provider sent it.
	QRBody                  string `json:"qrBody"`
	MerchantReferenceNumber string `json:"merchantReferenceNumber"`
	Amount                  string `json:"amount"`
	Currency                string `json:"currency"`
	// ExpiresAt is when the QR stops being payable (RFC 3339, UTC), counted
	// by the gateway from when it sent the request, so never late.
	ExpiresAt string `json:"expiresAt"`
}

func (o *Handler) serveCreateQR(w http.ResponseWriter, r *http.Request) {
	const endpoint = "create_qr"
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		o.fail(w, r, endpoint, newErr(http.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "", "use POST"))
		return
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		o.fail(w, r, endpoint, e)
		return
	}
	req, err := policy.DecodeCreateQR(body)
	if err != nil {
		o.fail(w, r, endpoint, err)
		return
	}
	amount, err := o.cfg.Policy.ValidateCreateQR(o.env, req)
	if err != nil {
		o.fail(w, r, endpoint, err, zap.String("reference", safeReference(req.MerchantReferenceNumber)))
		return
	}
	merchant, e := o.merchant(req.ActivationCode)
	if e != nil {
		o.fail(w, r, endpoint, e, zap.String("reference", req.MerchantReferenceNumber))
		return
	}
	canon := policy.CreateQR{ActivationCode: merchant, Currency: req.Currency, Amount: amount.String(), MerchantReferenceNumber: req.MerchantReferenceNumber}
	key, fingerprint, plaintext := o.idemKey(canon)

	start := o.clock.Now()
	deadline := start.Add(o.cfg.MaxWait)
	attempts := 0 // upstream attempts this request made (none when replayed)
	value, replayed, e := o.idem.do(r.Context(), key, fingerprint, o.lease, deadline, o.slotWithClaim(), func(ctx context.Context, slot *store.Grant) ([]byte, time.Duration, *proxy.Error) {
		return o.createUpstream(ctx, plaintext, canon, deadline, &attempts, slot)
	})
	logf := []zap.Field{zap.String("reference", canon.MerchantReferenceNumber), zap.Duration("duration", o.clock.Now().Sub(start))}
	if e != nil {
		o.fail(w, r, endpoint, e, logf...)
		return
	}
	ans, err := decodeStored(value)
	if err != nil {
		o.fail(w, r, endpoint, &proxy.Error{Status: http.StatusInternalServerError, Code: proxy.CodeInternal, Message: "stored answer is unreadable", Err: err}, logf...)
		return
	}
	// Checked again on the way out: an answer cached by an earlier version
	// was not checked on the way in. It stays cached (a miss would create a
	// second QR for this reference) and is refused until it expires.
	if !validTransactionID(ans.id) || !validExpiry(ans.expiresAt) {
		o.fail(w, r, endpoint, &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadResponse,
			Message: "the provider's answer kept for this merchantReferenceNumber is unusable; the reference can be used again when the QR validity ends"}, logf...)
		return
	}
	id, doc := ans.id, ans.doc
	if !replayed {
		o.recordQR(r.Context(), id, ans.expiresAt, canon, amount)
		o.cfg.Auditor.Audit(proxy.AuditEvent{Event: proxy.AuditQRCreated, TransactionID: id, Reference: canon.MerchantReferenceNumber})
	}
	// Every check that can still fail comes before the first header: an
	// error answer carries none of a success's headers. The two headers
	// from the provider hold its id and our expiry, both checked above.
	asPNG := wantsPNG(r.Header.Get("Accept"))
	var png []byte
	if asPNG {
		var res CreateQRResponse
		err := json.Unmarshal(doc, &res)
		if err == nil {
			png, err = decodeQRBody(res.QRBody)
		}
		if err == nil && !bytes.HasPrefix(png, []byte(pngSignature)) {
			err = errors.New("not a PNG image")
		}
		if err != nil {
			o.fail(w, r, endpoint, &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadResponse, Message: "the provider's qrBody is not a base64 PNG", Err: err}, logf...)
			return
		}
	}
	// The values share one array (each slice capped at its own element, so
	// an append elsewhere copies rather than overwrites its neighbour).
	h, vals := w.Header(), make([]string, 5)
	set := func(i int, name, v string) { vals[i] = v; h[name] = vals[i : i+1 : i+1] }
	set(0, "Cache-Control", "no-store")
	set(1, proxy.HeaderTransactionID, id)
	set(2, proxy.HeaderExpiresAt, ans.expiresAt)
	if replayed {
		h.Set(proxy.HeaderIdempotentReplayed, "true")
		o.obs.IdempotentReplay()
	}
	if asPNG {
		set(3, "Content-Type", "image/png")
		set(4, "Content-Length", strconv.Itoa(len(png)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(png)
	} else {
		set(3, "Content-Type", "application/json")
		set(4, "Content-Length", strconv.Itoa(len(doc)+1))
		w.WriteHeader(http.StatusOK)
		// doc is shared with concurrent duplicates: never append to it.
		_, _ = w.Write(doc)
		_, _ = w.Write([]byte{'\n'})
	}
	o.obs.Response(endpoint, http.StatusOK, "")
	msg := "QR created"
	if replayed {
		msg = "QR replayed"
	}
	if ce := o.log.Check(zap.InfoLevel, msg); ce != nil {
		ce.Write(append(logf, zap.String("endpoint", endpoint), zap.Int("status", http.StatusOK),
			proxy.LogString("transaction_id", id), zap.Bool("replayed", replayed), zap.Int("attempts", attempts))...)
	}
}

// slotWithClaim says whether the idempotency claim of a create call takes
// its rate slot too (one Redis round trip for both): only when nothing that
// runs between the two in the usual order could refuse the call, since a
// slot taken for a call that is then not sent stays counted (the safe side
// of the limit, but a slot lost). So not with merchant_rate_limit (checked
// before the slot is taken, so that a refused call costs the budget
// nothing), not while the breaker is not closed or the credentials are not
// trusted, not while calls queue for slots (they go first), and not when the
// store's budget is not the pacer's.
func (o *Handler) slotWithClaim() *takeSlot {
	t := o.idem.taker
	switch {
	case t == nil || t.BudgetKey() != o.cfg.Shared.Pacer.Key(),
		o.cfg.MerchantLimiter != nil && o.cfg.MerchantRateLimit.Requests > 0,
		!o.fuse.trusted(), o.cfg.Shared.Pacer.Queued() > 0,
		o.qr.breaker.State() != BreakerClosed:
		return nil
	}
	return &takeSlot{limit: o.cfg.RateLimit.Requests, window: o.cfg.RateLimit.Period}
}

// createUpstream checks the merchant's cap, encrypts the canonical
// request, sends it and turns the provider's encrypted answer into the
// app's response. It runs only for a call that goes upstream (never for an
// idempotent replay), so a replay does not count against the cap. slot is
// the rate slot the claim took, if it took one.
func (o *Handler) createUpstream(ctx context.Context, plaintext []byte, req policy.CreateQR, deadline time.Time, attempts *int, slot *store.Grant) ([]byte, time.Duration, *proxy.Error) {
	if e := o.merchantAllow(ctx, req.ActivationCode); e != nil {
		return nil, 0, e
	}
	// A compact JWE is base64url and dots: nothing to escape. The body is
	// built around it in one buffer.
	body, err := o.enc.AppendEncrypt(append(make([]byte, 0, 1024), `{"Token":"`...), plaintext)
	if err != nil {
		return nil, 0, &proxy.Error{Status: http.StatusInternalServerError, Code: proxy.CodeInternal, Message: "encryption failed", Err: err}
	}
	body = append(body, `"}`...)
	res, e := o.call(ctx, upstreamCall{endpoint: "create_qr", up: o.qr, method: http.MethodPost, path: "/v1/pay/qr", url: o.qr.createURL, body: body, auth: true, slot: slot}, deadline)
	if e != nil {
		return nil, 0, e
	}
	*attempts = res.attempts
	bad := func(msg string, err error) *proxy.Error {
		return &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadResponse, Message: msg, Err: err}
	}
	tok, ok := tokenOf(res.body)
	if !ok {
		return nil, 0, bad("the provider's answer has no Token", nil)
	}
	opened, err := o.ring.Decrypt(tok)
	if err != nil {
		return nil, 0, bad("the provider's answer could not be decrypted with encryption_key", err)
	}
	id, qrBody, err := parseAnswer(opened.Plaintext)
	switch {
	case err != nil:
		return nil, 0, bad("the provider's decrypted answer is not a JSON object", err)
	case !validTransactionID(id):
		return nil, 0, bad("the provider's answer has no usable id (1 to 128 printable ASCII characters)", nil)
	case qrBody == "":
		return nil, 0, bad("the provider's answer has no qrBody", nil)
	case !isBase64PNG(qrBody):
		return nil, 0, bad("the provider's qrBody is not a base64 PNG", nil)
	}
	expires := res.sentAt.Add(time.Duration(o.cfg.Policy.QR.Validity)).UTC().Truncate(time.Second)
	exp := expires.Format(time.RFC3339)
	doc := encodeAnswer(CreateQRResponse{
		ID: id, QRBody: qrBody, MerchantReferenceNumber: req.MerchantReferenceNumber,
		Amount: req.Amount, Currency: req.Currency, ExpiresAt: exp,
	})
	value := encodeStored(storedAnswer{id: id, expiresAt: exp, doc: doc})
	ttl := expires.Sub(o.clock.Now())
	if ttl <= 0 {
		ttl = time.Second
	}
	return value, ttl, nil
}

// tokenOf extracts the Token of a {"Token": "<JWE>"} answer. The common
// exact form is sliced out directly; anything else goes through encoding/json.
func tokenOf(body []byte) (string, bool) {
	b := bytes.TrimSpace(body)
	if inner, ok := bytes.CutPrefix(b, []byte(`{"Token":"`)); ok {
		if inner, ok = bytes.CutSuffix(inner, []byte(`"}`)); ok && bytes.IndexByte(inner, '"') < 0 && bytes.IndexByte(inner, '\\') < 0 {
			return string(inner), len(inner) > 0
		}
	}
	var env map[string]json.RawMessage // exact member names (a struct would match "token")
	var tok string
	if json.Unmarshal(body, &env) != nil || json.Unmarshal(env["Token"], &tok) != nil {
		return "", false
	}
	return tok, tok != ""
}

// idemKey returns the idempotency key of a validated request (account,
// merchant and reference), the fingerprint of the request itself, and the
// plaintext to send.
func (o *Handler) idemKey(canon policy.CreateQR) (key, fingerprint string, plaintext []byte) {
	plaintext = marshalCreateQR(canon)
	sum := sha256.Sum256(plaintext)
	msum := sha256.Sum256([]byte(canon.ActivationCode))
	key = "idem:" + o.env.Name + ":" + o.account + ":" + hex.EncodeToString(msum[:6]) + ":" + canon.MerchantReferenceNumber
	return key, hex.EncodeToString(sum[:16]), plaintext
}

// marshalCreateQR is json.Marshal of the canonical request without
// reflection: its values are validated (amount, currency, reference) or
// configured (the activation code), so they are written as they are when
// encoding/json would write them so; otherwise encoding/json does it.
func marshalCreateQR(c policy.CreateQR) []byte {
	if !plainJSONString(c.ActivationCode) || !plainJSONString(c.Currency) || !plainJSONString(c.Amount) || !plainJSONString(c.MerchantReferenceNumber) {
		b, _ := json.Marshal(c) // four strings: cannot fail
		return b
	}
	b := make([]byte, 0, 96+len(c.ActivationCode)+len(c.Currency)+len(c.Amount)+len(c.MerchantReferenceNumber))
	if c.ActivationCode != "" {
		b = append(append(append(b, `{"activationCode":"`...), c.ActivationCode...), `","currency":"`...)
	} else {
		b = append(b, `{"currency":"`...)
	}
	b = append(append(b, c.Currency...), `","amount":"`...)
	b = append(append(b, c.Amount...), `","merchantReferenceNumber":"`...)
	return append(append(b, c.MerchantReferenceNumber...), `"}`...)
}

// merchant picks the activation code: the request's, which must be a
// configured one, or the default.
func (o *Handler) merchant(requested string) (string, *proxy.Error) {
	if requested == "" {
		if o.cfg.DefaultMerchant == "" {
			return "", newErr(http.StatusBadRequest, policy.CodeMissingField, "activationCode", "is required: no default activation_code is configured")
		}
		return o.cfg.DefaultMerchant, nil
	}
	if !o.merchants[requested] {
		return "", newErr(http.StatusBadRequest, CodeUnknownMerchant, "activationCode", "is not one of the configured merchants")
	}
	return requested, nil
}

// parseAnswer reads "id" and "qrBody" from the provider's decrypted answer
// (other members are ignored; names match exactly). The usual shape,
// {"id":"…","qrBody":"…"} with plain strings in either order, is sliced out
// directly; anything else goes through encoding/json. A member that is not
// a string leaves its value empty.
func parseAnswer(b []byte) (id, qrBody string, err error) {
	if id, qrBody, ok := sliceAnswer(b); ok {
		return id, qrBody, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return "", "", errors.New("invalid JSON")
	}
	_ = json.Unmarshal(m["id"], &id)
	_ = json.Unmarshal(m["qrBody"], &qrBody)
	return id, qrBody, nil
}

func sliceAnswer(b []byte) (id, qrBody string, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"`))
	if !ok {
		return "", "", false
	}
	for i := 0; i < 2; i++ {
		var name, val []byte
		if name, rest, ok = bytes.Cut(rest, []byte(`":"`)); !ok {
			return "", "", false
		}
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return "", "", false
		}
		val, rest = rest[:end], rest[end+1:]
		if bytes.IndexByte(val, '\\') >= 0 || !plainJSONString(val) {
			return "", "", false
		}
		switch {
		case string(name) == "id" && id == "":
			id = string(val)
		case string(name) == "qrBody" && qrBody == "":
			qrBody = string(val)
		default:
			return "", "", false
		}
		sep := []byte(`,"`)
		if i == 1 {
			sep = []byte(`}`)
		}
		if rest, ok = bytes.CutPrefix(rest, sep); !ok {
			return "", "", false
		}
	}
	return id, qrBody, len(rest) == 0
}

// encodeAnswer is json.Marshal of the answer without reflection on the hot
// path: qrBody is checked base64, reference, amount, currency and expiry are
// validated or ours, so only the provider's id may need escaping.
func encodeAnswer(r CreateQRResponse) []byte {
	if !plainJSONString(r.ID) {
		b, _ := json.Marshal(r)
		return b
	}
	b := make([]byte, 0, len(r.QRBody)+len(r.ID)+len(r.MerchantReferenceNumber)+140)
	b = append(b, `{"id":"`...)
	b = append(b, r.ID...)
	b = append(b, `","qrBody":"`...)
	b = append(b, r.QRBody...)
	b = append(b, `","merchantReferenceNumber":"`...)
	b = append(b, r.MerchantReferenceNumber...)
	b = append(b, `","amount":"`...)
	b = append(b, r.Amount...)
	b = append(b, `","currency":"`...)
	b = append(b, r.Currency...)
	b = append(b, `","expiresAt":"`...)
	b = append(b, r.ExpiresAt...)
	return append(b, `"}`...)
}

// plainJSONString reports whether encoding/json would write s as is:
// printable ASCII without quotes, backslashes or HTML-escaped characters.
func plainJSONString[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// isBase64 checks the standard base64 alphabet and length (padded or not)
// without decoding.
func isBase64(s string) bool {
	n := len(s)
	body := strings.TrimRight(s, "=")
	pad := n - len(body)
	switch {
	case len(body) == 0 || pad > 2 || (pad > 0 && n%4 != 0) || (pad == 0 && n%4 == 1):
		return false
	}
	return isWord(body, "+/", len(body))
}

// validTransactionID reports whether the provider's id can go into a
// response header, a log line and the JSON answer as is: 1 to 128 printable
// ASCII characters, spaces only inside.
func validTransactionID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// validExpiry reports whether s is an RFC 3339 time (a stored expiresAt).
func validExpiry(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// isBase64PNG reports whether s is standard base64 (padded or not) of a
// PNG: the alphabet and length of the whole, and the PNG signature and
// header chunk's length at the start, decoded from the first 16 characters
// only (the whole image is decoded only when the app asks for it).
func isBase64PNG(s string) bool {
	if len(s) < 24 || !isBase64(s) {
		return false
	}
	head, err := base64.StdEncoding.DecodeString(s[:16])
	return err == nil && string(head[:8]) == pngSignature && string(head[8:12]) == "\x00\x00\x00\x0d"
}

// decodeQRBody decodes the provider's base64 PNG (padded or not).
func decodeQRBody(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") || len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// wantsPNG reports whether Accept prefers image/png over JSON: a higher
// quality, or an equal one listed first. JSON is the default.
func wantsPNG(accept string) bool {
	if accept == "" || !strings.Contains(accept, "image/") {
		return false
	}
	pngQ, jsonQ := -1.0, -1.0
	pngAt, jsonAt := 0, 0
	for i, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case "image/png":
			pngQ, pngAt = q, i
		case "application/json", "application/*", "*/*":
			if mt == "application/json" || jsonQ < 0 {
				jsonQ, jsonAt = q, i
			}
		case "image/*":
			if pngQ < 0 {
				pngQ, pngAt = q, i
			}
		}
	}
	if pngQ <= 0 {
		return false
	}
	return pngQ > jsonQ || (pngQ == jsonQ && pngAt < jsonAt)
}

// safeReference returns ref for logging only when it is well formed (an
// invalid one may be anything the app sent).
func safeReference(ref string) string {
	if !isWord(ref, "-", 36) {
		return ""
	}
	return ref
}
