package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// WebhookSecretPrefix marks a Standard Webhooks secret: "whsec_" and the key
// in base64. Such a secret works unchanged with the Standard Webhooks
// libraries in every language.
const WebhookSecretPrefix = "whsec_"

// WebhookSigner signs and verifies with the Standard Webhooks scheme:
// Webhook-Signature: v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>.
// The gateway signs what it delivers to the app with it; the sandbox's demo
// inbox verifies with it, as an app would. A signer may hold several keys
// (JoinWebhookSigners, during a secret rotation): it then signs with each,
// and the header lists one v1 entry per key, in order, separated by spaces.
type WebhookSigner struct {
	keys [][]byte
}

// NewWebhookSigner accepts a secret in one of two forms: "whsec_" followed
// by base64 (the HMAC key is the decoded bytes, at least 24 of them), or any
// other string of at least 32 bytes, used as the key as it is. field names
// the option in errors, which never contain the secret.
func NewWebhookSigner(field, secret string) (*WebhookSigner, error) {
	if rest, ok := strings.CutPrefix(secret, WebhookSecretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: the part after whsec_ is not valid base64", field)
		}
		if len(key) < 24 {
			return nil, fmt.Errorf("%s: whsec_ key decodes to %d bytes, want at least 24", field, len(key))
		}
		return &WebhookSigner{keys: [][]byte{key}}, nil
	}
	if secret == "" {
		return nil, errors.New(field + " is empty")
	}
	if len(secret) < 32 {
		return nil, fmt.Errorf("%s is %d bytes, want at least 32 (or a whsec_ secret)", field, len(secret))
	}
	return &WebhookSigner{keys: [][]byte{[]byte(secret)}}, nil
}

// JoinWebhookSigners returns a signer with the keys of all, in order: it
// signs with every one (a rotation: apps verifying with the old secret and
// apps verifying with the new one both find their entry) and verifies a
// header that any of them signed. An error names the first key that
// repeats an earlier one (by field[position], never by value).
func JoinWebhookSigners(field string, signers ...*WebhookSigner) (*WebhookSigner, error) {
	j := &WebhookSigner{}
	for i, s := range signers {
		for _, k := range s.keys {
			for n, prev := range j.keys {
				if hmac.Equal(prev, k) {
					return nil, fmt.Errorf("%s[%d] is the same key as %s[%d]", field, i+1, field, n+1)
				}
			}
			j.keys = append(j.keys, k)
		}
	}
	if len(j.keys) == 0 {
		return nil, errors.New(field + ": no secret")
	}
	return j, nil
}

// Keys is how many keys the signer signs with.
func (s *WebhookSigner) Keys() int { return len(s.keys) }

func mac(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the Webhook-Signature value for one delivery: a "v1,<base64>"
// entry per key, separated by single spaces. timestamp is the
// Webhook-Timestamp value (Unix seconds, as text).
func (s *WebhookSigner) Sign(id, timestamp string, body []byte) string {
	var b strings.Builder
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(k, id, timestamp, body)))
	}
	return b.String()
}

// Verify checks a Webhook-Signature header: space-separated "v1,<base64>"
// entries (several during a secret rotation), any of which may match any of
// the signer's keys.
func (s *WebhookSigner) Verify(id, timestamp string, body []byte, header string) bool {
	for _, k := range s.keys {
		want := mac(k, id, timestamp, body)
		for _, part := range strings.Fields(header) {
			version, sig, ok := strings.Cut(part, ",")
			if !ok || version != "v1" {
				continue
			}
			if got, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

// String keeps the key out of logs.
func (s *WebhookSigner) String() string { return "webhook-signer(" + Redacted + ")" }
