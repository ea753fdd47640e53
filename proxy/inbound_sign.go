package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SignaturePrefix marks a Standard Webhooks secret: "whsec_" and the key in
// base64. Such a secret works unchanged with the Standard Webhooks libraries.
const SignaturePrefix = "whsec_"

// Signer signs deliveries to the app with the Standard Webhooks scheme:
// Webhook-Signature: v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>.
type Signer struct {
	key []byte
}

// NewSigner accepts a secret in one of two forms: "whsec_" followed by
// base64 (the Standard Webhooks form; the HMAC key is the decoded bytes, at
// least 24 of them), or any other string of at least 32 bytes, used as the
// HMAC key as it is. Errors never contain the secret.
func NewSigner(secret string) (*Signer, error) {
	if rest, ok := strings.CutPrefix(secret, SignaturePrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, errors.New("sign_secret: the part after whsec_ is not valid base64")
		}
		if len(key) < 24 {
			return nil, fmt.Errorf("sign_secret: whsec_ key decodes to %d bytes, want at least 24", len(key))
		}
		return &Signer{key: key}, nil
	}
	if len(secret) < 32 {
		return nil, fmt.Errorf("sign_secret is %d bytes, want at least 32 (or a whsec_ secret)", len(secret))
	}
	return &Signer{key: []byte(secret)}, nil
}

// Sign returns the Webhook-Signature header value for one delivery attempt.
// timestamp is the Webhook-Timestamp value (Unix seconds).
func (s *Signer) Sign(id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// String keeps the key out of logs.
func (s *Signer) String() string { return "signer([REDACTED])" }
