package inbound

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qrphgate/qrphgate/policy"
)

// The envelope fields the provider's documentation uses for a webhook body:
// "data" on three pages, "Token" on the security page (modulus-api.md 4.3).
const (
	EnvelopeData  = "data"
	EnvelopeToken = "Token"
)

// Default payload fields, tried in order (modulus-api.md 6.3): the payload
// reference page has an action field (probably "action") and
// "referenceNumber"; the security page validates "status" and
// "transactionId"; "webhookAction" is the management API's name for the
// action, "merchantReferenceNumber" the create-QR name for the reference,
// and "id" the transaction id create-QR returns.
var (
	DefaultActionFields    = []string{"action", "webhookAction", "status"}
	DefaultReferenceFields = []string{"referenceNumber", "merchantReferenceNumber", "transactionId", "id"}
)

// maxFieldLen bounds the action and reference values; they become log
// fields and de-duplication keys.
const maxFieldLen = 128

// Envelope is a parsed webhook body.
type Envelope struct {
	// Token is the compact JWE.
	Token string
	// Field is the member it came in: EnvelopeData or EnvelopeToken.
	Field string
}

// ErrEnvelope and ErrPayload head every envelope and payload parsing error;
// the rest of the message says what is wrong, never what the value was.
var (
	ErrEnvelope = errors.New("webhook body")
	ErrPayload  = errors.New("webhook payload")
)

// ParseEnvelope reads a webhook body: one JSON object holding exactly one of
// "data" or "Token" (exact case) as a string. Other members are ignored
// (they are not authenticated, and refusing them would make the provider's
// retries fail for ever); a repeated member, both fields, neither, a
// non-string value, or anything after the object is refused.
func ParseEnvelope(body []byte) (Envelope, error) {
	var env Envelope
	err := walkObject(body, func(name string, value json.RawMessage) error {
		if name != EnvelopeData && name != EnvelopeToken {
			return nil
		}
		if env.Field != "" {
			if env.Field == name {
				return fmt.Errorf("%w: %q appears twice", ErrEnvelope, name)
			}
			return fmt.Errorf("%w: has both %q and %q; exactly one is allowed", ErrEnvelope, EnvelopeData, EnvelopeToken)
		}
		if len(value) == 0 || value[0] != '"' {
			return fmt.Errorf("%w: %q must be a string", ErrEnvelope, name)
		}
		if err := json.Unmarshal(value, &env.Token); err != nil {
			return fmt.Errorf("%w: %q is not a valid JSON string", ErrEnvelope, name)
		}
		env.Field = name
		return nil
	}, ErrEnvelope)
	if err != nil {
		return Envelope{}, err
	}
	if env.Field == "" {
		return Envelope{}, fmt.Errorf("%w: needs a %q or %q string", ErrEnvelope, EnvelopeData, EnvelopeToken)
	}
	return env, nil
}

// Payload is what the gateway reads from a decrypted webhook: the action
// (or status) and the reference (or transaction id), which together
// identify the event for de-duplication, with the merchant and the
// provider's transaction id when the payload names them. The body itself is
// forwarded verbatim.
type Payload struct {
	Action         string
	ActionField    string
	Reference      string
	ReferenceField string
	// Merchant is the payload's "activationCode" when it carries a
	// well-formed one (1-128 visible ASCII characters). It is inside the
	// JWE, so authenticated, unlike the activation-code header.
	Merchant string
	// TransactionID is the provider's transaction id ("transactionId" or
	// "id") when the payload carries a well-formed one. It is part of the
	// de-duplication key (authenticated, like the merchant), so two
	// payments that reuse a reference within the window stay two events.
	TransactionID string
}

// transactionIDFields name the provider's transaction id in a payload.
var transactionIDFields = []string{"transactionId", "id"}

// merchantField names the merchant's activation code in a payload (its
// name in the create-QR request); the provider documents none in webhooks.
var merchantField = []string{"activationCode"}

// ParsePayload checks that plaintext is one JSON object in valid UTF-8 with
// no repeated top-level member, and finds the first present member of
// actionFields (a non-empty string) and of referenceFields (a non-empty
// string or an integer). Values are at most 128 characters with no control
// characters (C0, DEL and C1, as unicode.IsControl) and no line or paragraph
// separator (U+2028, U+2029): a log viewer may break a line at any of them.
func ParsePayload(plaintext []byte, actionFields, referenceFields []string) (Payload, error) {
	if !utf8.Valid(plaintext) {
		return Payload{}, fmt.Errorf("%w: is not valid UTF-8", ErrPayload)
	}
	members := make(map[string]json.RawMessage, 8)
	err := walkObject(plaintext, func(name string, value json.RawMessage) error {
		if _, dup := members[name]; dup {
			// The name is not echoed: it comes from the decrypted body.
			return fmt.Errorf("%w: a top-level member appears twice", ErrPayload)
		}
		members[name] = value
		return nil
	}, ErrPayload)
	if err != nil {
		return Payload{}, err
	}
	var p Payload
	if p.ActionField, p.Action, err = pick(members, actionFields, false); err != nil {
		return Payload{}, err
	}
	if p.ReferenceField, p.Reference, err = pick(members, referenceFields, true); err != nil {
		return Payload{}, err
	}
	// A malformed id is left out, not an error: the key then has an empty
	// transaction id, as for a payload without one.
	if _, id, err := pick(members, transactionIDFields, true); err == nil {
		p.TransactionID = id
	}
	// A malformed merchant is left out too: the key is then the action and
	// reference alone, as for a payload without one.
	if _, m, err := pick(members, merchantField, false); err == nil && ValidActivationCodeHeader(m) {
		p.Merchant = m
	}
	if p.ActionField == "" {
		return Payload{}, fmt.Errorf("%w: has no action or status (looked for %s)", ErrPayload, strings.Join(actionFields, ", "))
	}
	if p.ReferenceField == "" {
		return Payload{}, fmt.Errorf("%w: has no reference or transaction id (looked for %s)", ErrPayload, strings.Join(referenceFields, ", "))
	}
	return p, nil
}

// DedupeKey identifies the event for de-duplication: "webhook:" and the
// lowercase hex SHA-256 of the payload's merchant, action, reference and
// transaction id, NUL-separated (an absent merchant or transaction id is
// empty), so the key is short and holds no payload text. Everything in it
// comes from the decrypted payload, so a token replayed under any
// activation-code header (an unauthenticated echo) has the same key: a
// duplicate. No field can hold a NUL (ParsePayload refuses control
// characters; a merchant is visible ASCII), so the four-field key never
// equals a key of the earlier three-field forms (earlierKeys).
func (p Payload) DedupeKey() string {
	return digestKey(p.Merchant, p.Action, p.Reference, p.TransactionID)
}

// digestKey is "webhook:" and the hex SHA-256 of fields joined by NUL.
func digestKey(fields ...string) string {
	h := sha256.New()
	for i, f := range fields {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(f))
	}
	return "webhook:" + hex.EncodeToString(h.Sum(nil))
}

// pick returns the first of fields present in members, validated.
func pick(members map[string]json.RawMessage, fields []string, integersOK bool) (field, value string, err error) {
	for _, f := range fields {
		raw, ok := members[f]
		if !ok {
			continue
		}
		switch {
		case len(raw) > 0 && raw[0] == '"':
			if err := json.Unmarshal(raw, &value); err != nil {
				return "", "", fmt.Errorf("%w: %s is not a valid string", ErrPayload, f)
			}
		case integersOK && isJSONInteger(raw):
			value = string(raw)
		case integersOK:
			return "", "", fmt.Errorf("%w: %s must be a string or an integer", ErrPayload, f)
		default:
			return "", "", fmt.Errorf("%w: %s must be a string", ErrPayload, f)
		}
		if err := checkFieldText(value); err != nil {
			return "", "", fmt.Errorf("%w: %s %w", ErrPayload, f, err)
		}
		return f, value, nil
	}
	return "", "", nil
}

// checkFieldText is the rule for a payload value that becomes a log field,
// a de-duplication key or a ledger entry (the action, the reference, the
// transaction id): 1 to maxFieldLen bytes, with no control character and
// no Unicode line or paragraph separator.
func checkFieldText(value string) error {
	if value == "" || len(value) > maxFieldLen {
		return fmt.Errorf("must be 1 to %d characters", maxFieldLen)
	}
	if strings.IndexFunc(value, isLineBreaking) >= 0 {
		return errors.New("contains a control character or a line separator")
	}
	return nil
}

// isLineBreaking reports a control character or a Unicode line or
// paragraph separator.
func isLineBreaking(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

func isJSONInteger(raw json.RawMessage) bool {
	s := raw
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// walkObject reads the single JSON object in b (policy.WalkObject),
// reporting its structural failures as kind (ErrEnvelope, ErrPayload).
func walkObject(b []byte, member func(name string, value json.RawMessage) error, kind error) error {
	err := policy.WalkObject(b, member)
	var pe *policy.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s", kind, strings.TrimPrefix(pe.Message, "body "))
	}
	return err
}
