package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/crypto"
)

// Signing secrets. One sign_secret signs every delivery; during a rotation
// there are two (or more), and each delivery carries one Webhook-Signature
// entry per secret, so an app verifying with the old secret and one
// verifying with the new both accept it (docs/webhooks.md, "Rotating the
// signing secret"). JSON keeps sign_secret, a string, for one secret (the
// form every earlier config has) and takes sign_secrets, a list, for
// several; the Caddyfile's repeated sign_secret adapts to the same.

// addSignSecret records one sign_secret line of the Caddyfile: the first in
// SignSecret, so a single secret adapts exactly as before; a second moves
// both to SignSecrets.
func (h *Webhook) addSignSecret(v string) {
	switch {
	case h.SignSecret == "" && len(h.SignSecrets) == 0:
		h.SignSecret = v
	case h.SignSecret != "":
		h.SignSecrets = []string{h.SignSecret, v}
		h.SignSecret = ""
	default:
		h.SignSecrets = append(h.SignSecrets, v)
	}
}

// checkSignSecrets is the sign_secret rule: one field or the other, each
// secret a {env.*} or {file.*} placeholder, none empty. A secret of the
// list is named by its position (sign_secret[2]).
func checkSignSecrets(one string, list []string) error {
	if one != "" && len(list) > 0 {
		return errors.New("sign_secret and sign_secrets are both set: put every secret in sign_secrets")
	}
	if len(list) == 0 {
		return checkSecretForm("sign_secret", one, false)
	}
	for i, s := range list {
		name := listName("sign_secret", i)
		if strings.TrimSpace(s) == "" {
			return errors.New(name + " is empty")
		}
		if err := checkSecretForm(name, s, false); err != nil {
			return err
		}
	}
	return nil
}

// signer resolves the signing secrets into one signer (nil when none is
// configured) and a digest of them for the delivery fingerprint; errors
// name a secret by option and position, never by value. The same key twice
// is refused: it would only repeat a signature.
func (h *Webhook) signer(repl *caddy.Replacer) (*crypto.WebhookSigner, string, error) {
	raw := h.SignSecrets
	if h.SignSecret != "" {
		raw = []string{h.SignSecret}
	}
	if len(raw) == 0 {
		return nil, "", nil
	}
	signers := make([]*crypto.WebhookSigner, 0, len(raw))
	digest := sha256.New()
	for i, r := range raw {
		name := "sign_secret"
		if len(raw) > 1 {
			name = listName("sign_secret", i)
		}
		secret, _, err := resolveSecret(repl, name, r, false)
		if err != nil {
			return nil, "", err
		}
		s, err := crypto.NewWebhookSigner(name, secret)
		if err != nil {
			return nil, "", err
		}
		signers = append(signers, s)
		digest.Write([]byte(secret))
		digest.Write([]byte{0})
	}
	joined, err := crypto.JoinWebhookSigners("sign_secret", signers...)
	if err != nil {
		return nil, "", err
	}
	return joined, hex.EncodeToString(digest.Sum(nil)[:8]), nil
}
