package preflight

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Registration is one webhook registered with the provider.
type Registration struct {
	ID      string
	URL     string
	Actions []string
	Status  string
}

// ParseRegistrations reads the answer of GET /v1/webhooks,
// {"webhooks":[...]}, whose items come in either documented shape (the
// list page's id number, webhookUrl, actions[] and status, or the
// create page's id string, callbackUrl, webhookAction and webhookStatus;
// docs/provider-ambiguities.md).
func ParseRegistrations(body []byte) ([]Registration, error) {
	var doc struct {
		Webhooks []struct {
			ID            json.RawMessage `json:"id"`
			WebhookURL    string          `json:"webhookUrl"`
			CallbackURL   string          `json:"callbackUrl"`
			Actions       []string        `json:"actions"`
			WebhookAction string          `json:"webhookAction"`
			Status        string          `json:"status"`
			WebhookStatus string          `json:"webhookStatus"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the webhook list is not the documented JSON: %w", err)
	}
	if doc.Webhooks == nil && !bytes.Contains(body, []byte(`"webhooks"`)) {
		return nil, errors.New(`the webhook list has no "webhooks" member`)
	}
	out := make([]Registration, 0, len(doc.Webhooks))
	for _, w := range doc.Webhooks {
		r := Registration{ID: strings.Trim(string(w.ID), `"`), URL: w.WebhookURL, Actions: w.Actions, Status: w.Status}
		if r.URL == "" {
			r.URL = w.CallbackURL
		}
		if w.WebhookAction != "" && !slices.Contains(r.Actions, w.WebhookAction) {
			r.Actions = append(r.Actions, w.WebhookAction)
		}
		if r.Status == "" {
			r.Status = w.WebhookStatus
		}
		out = append(out, r)
	}
	return out, nil
}

// SameURL reports whether two callback URLs name the same endpoint:
// scheme and host compared without case, the default port implied, the
// path and query compared exactly (a route that answers /webhooks/modulus
// does not answer /webhooks/modulus/).
func SameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	norm := func(u *url.URL) string {
		host := strings.ToLower(u.Hostname())
		port := u.Port()
		scheme := strings.ToLower(u.Scheme)
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		return scheme + "://" + host + ":" + port + path + "?" + u.RawQuery
	}
	return norm(ua) == norm(ub)
}

// RegistrationVerdict says whether the provider delivers action to
// callback: a registration for that URL and action with status ENABLED.
// api is the modulus_api base URL the fix's commands go through.
func RegistrationVerdict(regs []Registration, callback, action, api string) Verdict {
	var disabled []Registration
	var elsewhere []string
	for _, r := range regs {
		if !slices.Contains(r.Actions, action) {
			continue
		}
		if !SameURL(r.URL, callback) {
			elsewhere = append(elsewhere, r.URL)
			continue
		}
		if strings.EqualFold(r.Status, "ENABLED") {
			return Pass(fmt.Sprintf("%s is registered and ENABLED for %s (webhook %s)", action, callback, r.ID))
		}
		disabled = append(disabled, r)
	}
	if len(disabled) > 0 {
		r := disabled[0]
		return Failure(fmt.Sprintf("%s is registered for %s but its status is %s: the provider sends nothing", action, callback, orNone(r.Status)),
			fmt.Sprintf(`enable it: curl -X PUT %s/v1/webhooks/%s -H 'Content-Type: application/json' -d '{"webhookStatus":"ENABLED"}'`, api, r.ID))
	}
	reason := fmt.Sprintf("no %s webhook is registered for %s", action, callback)
	if len(elsewhere) > 0 {
		if len(elsewhere) > 3 {
			elsewhere = append(elsewhere[:3], "...")
		}
		reason += " (registered for: " + strings.Join(elsewhere, ", ") + ")"
	}
	return Failure(reason, fmt.Sprintf(`register it: curl -X POST %s/v1/webhooks -H 'Content-Type: application/json' -d '{"callbackUrl":"%s","webhookAction":"%s"}'`, api, callback, action))
}

func orNone(s string) string {
	if s == "" {
		return "not given"
	}
	return s
}
