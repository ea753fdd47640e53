package sandbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qrphgate/qrphgate/policy"
)

// EMVCo merchant-presented QR (the format QR Ph uses) is a string of TLV
// data objects: a two-digit ID, a two-digit length and the value. The
// template IDs below hold nested data objects of the same form.

// QR Ph constants, from the provider's own example payload (modulus-api.md
// section 6.1): merchant account information template 28 with the PPMI P2M
// GUID, point of initiation "12" (dynamic) and currency 608 (PHP).
const (
	qrphGUID         = "ph.ppmi.p2m"
	pointOfInitDyn   = "12"
	payloadFormat    = "01"
	countryPH        = "PH"
	sandboxAcquirer  = "SNDBPHM1XXX" // a BIC-shaped acquirer id that no bank has
	sandboxMCC       = "6016"        // the merchant category in the provider's example
	maxPayloadLength = 512
	maxTLVValue      = 99
	crcFieldPrefix   = "6304"
)

// Merchant name and city written into every simulated QR.
const (
	SandboxMerchantName = "QRPHGATE SANDBOX"
	SandboxMerchantCity = "MANILA"
)

// numericCurrency maps the ISO 4217 codes the policy may allow to the
// numeric codes EMVCo tag 53 carries.
var numericCurrency = map[string]string{"PHP": "608", "USD": "840", "SGD": "702"}

// PaymentQR is what a simulated dynamic QR Ph says.
type PaymentQR struct {
	// TransactionID is the provider's id for the QR; its first 25
	// characters are the merchant-account id (template 28, sub-tag 03),
	// as in the provider's example.
	TransactionID string
	// Reference is the merchantReferenceNumber, written as the reference
	// label (template 62, sub-tag 05).
	Reference string
	Amount    policy.Centavos
	Currency  string
}

// BuildPayload encodes q as an EMVCo QR Ph string ending in a valid
// CRC-16/CCITT-FALSE. EMVCo caps the sub-fields of template 62 at 25
// characters; the simulator writes the whole reference (up to 36) so that
// it survives the round trip, which a strict wallet might not accept.
func BuildPayload(q PaymentQR) (string, error) {
	num, ok := numericCurrency[q.Currency]
	if !ok {
		return "", fmt.Errorf("currency %q has no EMVCo numeric code here", q.Currency)
	}
	if q.Amount <= 0 {
		return "", errors.New("amount must be positive")
	}
	merchantID := q.TransactionID
	if len(merchantID) > 25 {
		merchantID = merchantID[:25]
	}
	var b strings.Builder
	fields := []struct {
		id, value string
	}{
		{"00", payloadFormat},
		{"01", pointOfInitDyn},
		{"28", tlv("00", qrphGUID) + tlv("01", sandboxAcquirer) + tlv("03", merchantID)},
		{"52", sandboxMCC},
		{"53", num},
		{"54", q.Amount.String()},
		{"58", countryPH},
		{"59", SandboxMerchantName},
		{"60", SandboxMerchantCity},
		{"62", tlv("05", q.Reference)},
	}
	for _, f := range fields {
		if len(f.value) == 0 || len(f.value) > maxTLVValue {
			return "", fmt.Errorf("field %s: value of %d characters does not fit a data object", f.id, len(f.value))
		}
		b.WriteString(tlv(f.id, f.value))
	}
	b.WriteString(crcFieldPrefix)
	return b.String() + fmt.Sprintf("%04X", CRC16(b.String())), nil
}

func tlv(id, value string) string { return fmt.Sprintf("%s%02d%s", id, len(value), value) }

// CRC16 is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
// reflection, no final XOR), the checksum EMVCo tag 63 carries over the
// whole payload up to and including "6304".
func CRC16(s string) uint16 {
	crc := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Field is one EMVCo data object; Sub holds the nested objects of a
// template.
type Field struct {
	ID    string
	Value string
	Sub   []Field
}

// Payload is a parsed EMVCo merchant-presented QR string.
type Payload struct {
	Raw    string
	Fields []Field
}

// Errors from ParsePayload, distinct so the simulate call can say what is
// wrong with a qrBody.
var (
	ErrNotEMVCo    = errors.New("not an EMVCo merchant-presented QR payload")
	ErrCRCMismatch = errors.New("EMVCo payload CRC does not match")
)

// ParsePayload parses and checks an EMVCo payload: bounded length, valid
// UTF-8 without control characters, well-formed TLVs (templates parsed one
// level down), no repeated top-level ID, payload format indicator "01"
// first and a CRC (tag 63) last that matches.
func ParsePayload(s string) (Payload, error) {
	switch {
	case len(s) > maxPayloadLength:
		return Payload{}, fmt.Errorf("%w: longer than %d bytes", ErrNotEMVCo, maxPayloadLength)
	case !utf8.ValidString(s):
		return Payload{}, fmt.Errorf("%w: not valid UTF-8", ErrNotEMVCo)
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return Payload{}, fmt.Errorf("%w: contains control characters", ErrNotEMVCo)
	}
	fields, err := parseTLVs(s)
	if err != nil {
		return Payload{}, err
	}
	if fields[0].ID != "00" || fields[0].Value != payloadFormat {
		return Payload{}, fmt.Errorf("%w: does not start with payload format indicator 000201", ErrNotEMVCo)
	}
	last := fields[len(fields)-1]
	if last.ID != "63" || len(last.Value) != 4 {
		return Payload{}, fmt.Errorf("%w: does not end with a CRC data object (63 04 XXXX)", ErrNotEMVCo)
	}
	want, err := strconv.ParseUint(last.Value, 16, 16)
	if err != nil {
		return Payload{}, fmt.Errorf("%w: CRC is not hexadecimal", ErrNotEMVCo)
	}
	if got := CRC16(s[:len(s)-4]); uint16(want) != got {
		return Payload{}, fmt.Errorf("%w: carries %s, content gives %04X", ErrCRCMismatch, last.Value, got)
	}
	seen := make(map[string]bool, len(fields))
	for i := range fields {
		f := &fields[i]
		if seen[f.ID] {
			return Payload{}, fmt.Errorf("%w: data object %s appears twice", ErrNotEMVCo, f.ID)
		}
		seen[f.ID] = true
		if isTemplate(f.ID) {
			if f.Sub, err = parseTLVs(f.Value); err != nil {
				return Payload{}, fmt.Errorf("template %s: %w", f.ID, err)
			}
		}
	}
	return Payload{Raw: s, Fields: fields}, nil
}

// isTemplate reports whether an ID holds nested data objects: merchant
// account information (26-51), additional data (62), language template (64)
// and the unreserved templates (80-99).
func isTemplate(id string) bool {
	n, _ := strconv.Atoi(id)
	return n >= 26 && n <= 51 || n == 62 || n == 64 || n >= 80
}

func parseTLVs(s string) ([]Field, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrNotEMVCo)
	}
	var out []Field
	for len(s) > 0 {
		if len(s) < 4 || !isDigits(s[:4]) {
			return nil, fmt.Errorf("%w: data object header is not four digits", ErrNotEMVCo)
		}
		n, _ := strconv.Atoi(s[2:4])
		if n == 0 || len(s)-4 < n {
			return nil, fmt.Errorf("%w: data object %s has a bad length", ErrNotEMVCo, s[:2])
		}
		out = append(out, Field{ID: s[:2], Value: s[4 : 4+n]})
		s = s[4+n:]
	}
	return out, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Get returns the value at an ID path ("62", "05" is the reference label).
func (p Payload) Get(path ...string) (string, bool) {
	fields := p.Fields
	for i, id := range path {
		var found *Field
		for j := range fields {
			if fields[j].ID == id {
				found = &fields[j]
				break
			}
		}
		if found == nil {
			return "", false
		}
		if i == len(path)-1 {
			return found.Value, true
		}
		fields = found.Sub
	}
	return "", false
}
