package outbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
)

// serveWebhooks is the webhook-management passthrough: the app calls
// /v1/webhooks... without credentials; bodies are validated and rebuilt
// from the validated fields, credentials are injected, and the provider's
// answer is passed back when it is JSON (a 204 without its body), as
// application/json.
func (o *Handler) serveWebhooks(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	var (
		endpoint string
		allow    string
		id       string
		hasID    bool // the path names one webhook: its id must be valid, empty included
	)
	switch {
	case p == "/v1/webhooks":
		allow = "GET, POST"
		switch r.Method {
		case http.MethodGet:
			endpoint = "webhooks_list"
		case http.MethodPost:
			endpoint = "webhooks_create"
		}
	case p == "/v1/webhooks/qrph/simulate":
		allow = "POST"
		if r.Method == http.MethodPost {
			endpoint = "webhooks_simulate"
		}
	default:
		id, hasID = strings.TrimPrefix(p, "/v1/webhooks/"), true
		allow = "PUT, DELETE"
		switch r.Method {
		case http.MethodPut:
			endpoint = "webhooks_update"
		case http.MethodDelete:
			endpoint = "webhooks_delete"
		}
	}
	if endpoint == "" {
		w.Header().Set("Allow", allow)
		o.fail(w, r, "webhooks", newErr(http.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "", "allowed: "+allow))
		return
	}
	if endpoint == "webhooks_simulate" && o.env.Name != policy.Sandbox {
		o.fail(w, r, endpoint, newErr(http.StatusBadRequest, CodeSandboxOnly, "", "the simulate API exists only in the sandbox"))
		return
	}
	if o.webhooks == nil {
		o.fail(w, r, endpoint, newErr(http.StatusNotImplemented, CodeWebhooksNotConfigured, "",
			"webhooks_url is not configured for "+o.env.Name+" (the provider has not published it; set it from your onboarding details)"))
		return
	}
	if hasID && !validWebhookID(id) {
		o.fail(w, r, endpoint, newErr(http.StatusBadRequest, CodeInvalidWebhookID, "id", "must be 1-64 letters, digits or hyphens"))
		return
	}

	c := upstreamCall{endpoint: endpoint, up: o.webhooks, method: r.Method, path: p, auth: true}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		raw, e := readJSONBody(w, r)
		if e != nil {
			o.fail(w, r, endpoint, e)
			return
		}
		fields, e := o.validateWebhookBody(endpoint, raw)
		if e != nil {
			o.fail(w, r, endpoint, e)
			return
		}
		body, err := o.webhookPayload(fields)
		if err != nil {
			o.fail(w, r, endpoint, err)
			return
		}
		c.body = body
	}
	if endpoint == "webhooks_create" {
		if v := r.Header.Get(proxy.HeaderActivationCode); v != "" {
			if !validHeaderCode(v) {
				o.fail(w, r, endpoint, newErr(http.StatusBadRequest, CodeInvalidHeader, proxy.HeaderActivationCode, "must be 1-64 letters, digits, hyphens or underscores"))
				return
			}
			c.header = http.Header{proxy.HeaderActivationCode: {v}}
		}
	}
	start := o.clock.Now()
	res, e := o.call(r.Context(), c, start.Add(o.cfg.MaxWait))
	if e != nil {
		o.fail(w, r, endpoint, e, zap.Duration("duration", o.clock.Now().Sub(start)))
		return
	}
	// The answer is passed on only as JSON, under our own Content-Type:
	// the provider's body is checked, its headers are never copied.
	noBody := res.status == http.StatusNoContent
	if !noBody && !json.Valid(res.body) {
		o.fail(w, r, endpoint, &proxy.Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadResponse,
			Message: fmt.Sprintf("the provider's answer (status %d) is not JSON", res.status)},
			zap.Duration("duration", o.clock.Now().Sub(start)))
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if noBody {
		w.WriteHeader(res.status)
	} else {
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body)
	}
	o.obs.Response(endpoint, res.status, "")
	o.log.Info("webhook management call", zap.String("endpoint", endpoint), zap.Int("status", res.status),
		zap.Int("attempts", res.attempts), zap.Duration("duration", o.clock.Now().Sub(start)))
}

// validateWebhookBody strictly decodes and checks a create, update or
// simulate body and returns the fields to send.
func (o *Handler) validateWebhookBody(endpoint string, raw []byte) (map[string]string, *proxy.Error) {
	var allowed, required []string
	switch endpoint {
	case "webhooks_create":
		allowed, required = []string{"callbackUrl", "webhookAction"}, []string{"callbackUrl", "webhookAction"}
	case "webhooks_update":
		allowed = []string{"callbackUrl", "webhookAction", "webhookStatus"}
	case "webhooks_simulate":
		allowed, required = []string{"qrBody", "useCase"}, []string{"qrBody", "useCase"}
	}
	f, e := decodeStringFields(raw, allowed)
	if e != nil {
		if endpoint == "webhooks_create" && e.Field == "webhookStatus" && e.Code == policy.CodeUnknownField {
			e.Message = "create takes no webhookStatus (the provider documents none); create the webhook, then PUT /v1/webhooks/{id} with webhookStatus"
		}
		return nil, e
	}
	for _, name := range required {
		if _, ok := f[name]; !ok {
			return nil, newErr(http.StatusBadRequest, policy.CodeMissingField, name, "is required")
		}
	}
	if len(f) == 0 {
		return nil, newErr(http.StatusBadRequest, policy.CodeMissingField, "", "set at least one of callbackUrl, webhookAction, webhookStatus")
	}
	rules := o.cfg.Policy.Webhooks
	if v, ok := f["callbackUrl"]; ok {
		if e := o.checkCallbackURL(v); e != nil {
			return nil, e
		}
	}
	if v, ok := f["webhookAction"]; ok && !slices.Contains(rules.Actions, v) {
		return nil, newErr(http.StatusBadRequest, CodeInvalidWebhookAction, "webhookAction", "must be one of "+strings.Join(rules.Actions, ", "))
	}
	if v, ok := f["webhookStatus"]; ok && !slices.Contains(rules.Statuses, v) {
		return nil, newErr(http.StatusBadRequest, CodeInvalidWebhookStatus, "webhookStatus", "must be one of "+strings.Join(rules.Statuses, ", "))
	}
	if v, ok := f["useCase"]; ok && !slices.Contains(rules.SimulateUseCases, v) {
		return nil, newErr(http.StatusBadRequest, CodeInvalidUseCase, "useCase", "must be one of "+strings.Join(rules.SimulateUseCases, ", "))
	}
	if v, ok := f["qrBody"]; ok {
		if e := checkQRText(v); e != nil {
			return nil, e
		}
	}
	return f, nil
}

// checkCallbackURL: an absolute URL without credentials or fragment; https,
// or http in the sandbox only (the provider refuses http in production).
func (o *Handler) checkCallbackURL(s string) *proxy.Error {
	bad := func(msg string) *proxy.Error {
		return newErr(http.StatusBadRequest, CodeInvalidCallbackURL, "callbackUrl", msg)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || len(s) > 2048 || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return bad("must be an absolute URL such as https://example.com/webhooks/modulus")
	case u.User != nil:
		return bad("must not carry credentials")
	case u.Fragment != "":
		return bad("must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && o.env.Name == policy.Sandbox:
		return nil
	case u.Scheme == "http":
		return bad("must use https in production")
	}
	return bad("must use https")
}

// checkQRText checks the simulate call's qrBody: the raw QR Ph text, not the
// base64 PNG that create returns.
func checkQRText(s string) *proxy.Error {
	bad := func(msg string) *proxy.Error { return newErr(http.StatusBadRequest, CodeInvalidQRBody, "qrBody", msg) }
	if s == "" || len(s) > 1024 {
		return bad("must be the QR's text, 1-1024 bytes")
	}
	if strings.HasPrefix(s, "iVBORw0KGgo") {
		return bad("is the base64 PNG; send the text encoded in the QR (it starts with 000201)")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return bad("must not contain control characters")
		}
	}
	return nil
}

// webhookPayload encodes validated fields, wrapped in {"Token": JWE} when
// webhooks_payload is jwe.
func (o *Handler) webhookPayload(fields map[string]string) ([]byte, *proxy.Error) {
	b, _ := json.Marshal(fields)
	if o.cfg.WebhooksPayload != WebhooksPayloadJWE {
		return b, nil
	}
	tok, err := o.enc.Encrypt(b)
	if err != nil {
		return nil, &proxy.Error{Status: http.StatusInternalServerError, Code: proxy.CodeInternal, Message: "encryption failed", Err: err}
	}
	return []byte(`{"Token":"` + tok + `"}`), nil
}

func validWebhookID(id string) bool { return isWord(id, "-", 64) }

func validHeaderCode(v string) bool { return isWord(v, "-_", 64) }

// decodeStringFields strictly decodes a JSON object whose members are all
// strings from allowed (policy.DecodeStringFields), as a 400 *Error.
func decodeStringFields(body []byte, allowed []string) (map[string]string, *proxy.Error) {
	f, err := policy.DecodeStringFields(body, allowed, func(string) string { return policy.CodeInvalidJSON })
	if err != nil {
		return nil, proxy.AsError(err)
	}
	return f, nil
}

// servePing checks the provider's QR API: an unauthenticated GET /ping
// through the same pacing and breaker as every call.
func (o *Handler) servePing(w http.ResponseWriter, r *http.Request) {
	const endpoint = "ping"
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		o.fail(w, r, endpoint, newErr(http.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "", "use GET"))
		return
	}
	start := o.clock.Now()
	res, e := o.call(r.Context(), upstreamCall{endpoint: endpoint, up: o.qr, method: http.MethodGet, path: "/ping"}, start.Add(o.cfg.MaxWait))
	if e != nil {
		o.fail(w, r, endpoint, e, zap.Duration("duration", o.clock.Now().Sub(start)))
		return
	}
	body := res.body
	if len(body) > 1024 {
		body = body[:1024]
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.status)
	_, _ = w.Write(body)
	o.obs.Response(endpoint, res.status, "")
	// Health checks call this often: their successes log at debug level.
	o.log.Debug("ping", zap.String("endpoint", endpoint), zap.Int("status", res.status),
		zap.Int("attempts", res.attempts), zap.Duration("duration", o.clock.Now().Sub(start)))
}
