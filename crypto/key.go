package crypto

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the only key length A256KW accepts. go-jose does not check it for
// AES key wrap (it picks AES-128/192/256 by length), so we must.
const KeySize = 32

// ErrKeySize reports key material that does not decode to exactly KeySize bytes.
var ErrKeySize = errors.New("key must decode to exactly 32 bytes")

// Encoding says how a configured key string becomes the 32 key bytes.
type Encoding string

// The supported key encodings. EncodingUTF8 is the default because the
// provider's only complete sample (webhooks security page) uses the raw UTF-8
// bytes of the key string.
const (
	EncodingUTF8      Encoding = "utf8"
	EncodingBase64    Encoding = "base64"
	EncodingBase64URL Encoding = "base64url"
	EncodingHex       Encoding = "hex"
)

// Encodings lists every accepted encoding name, for help texts and errors.
var Encodings = []Encoding{EncodingUTF8, EncodingBase64, EncodingBase64URL, EncodingHex}

// ParseEncoding returns the Encoding named s; the empty string means utf8.
func ParseEncoding(s string) (Encoding, error) {
	if s == "" {
		return EncodingUTF8, nil
	}
	for _, e := range Encodings {
		if string(e) == s {
			return e, nil
		}
	}
	return "", fmt.Errorf("unknown key encoding %q (want one of utf8, base64, base64url, hex)", s)
}

// DecodeKey turns configured key material into key bytes. The error never
// contains the material, only its length and what was expected.
func DecodeKey(material string, enc Encoding) ([]byte, error) {
	if material == "" {
		return nil, errors.New("key is empty")
	}
	var (
		b   []byte
		err error
	)
	switch enc {
	case EncodingUTF8, "":
		b = []byte(material)
	case EncodingBase64:
		b, err = decodeBase64(material, base64.StdEncoding)
	case EncodingBase64URL:
		b, err = decodeBase64(material, base64.URLEncoding)
	case EncodingHex:
		b, err = hex.DecodeString(material)
	default:
		return nil, fmt.Errorf("unknown key encoding %q", enc)
	}
	if err != nil {
		// The decoder's own error can quote a byte of the key: drop it.
		return nil, fmt.Errorf("key is not valid %s (%d characters)", enc, len(material))
	}
	if len(b) != KeySize {
		hint := ""
		if enc == EncodingUTF8 && strings.TrimSpace(material) != material {
			hint = "; it has leading or trailing whitespace"
		}
		return nil, fmt.Errorf("%w: %s key decodes to %d bytes%s", ErrKeySize, enc, len(b), hint)
	}
	return b, nil
}

// decodeBase64 accepts both padded and unpadded input, since key material is
// often copied without its trailing '='.
func decodeBase64(s string, padded *base64.Encoding) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return padded.Strict().DecodeString(s)
	}
	return padded.WithPadding(base64.NoPadding).Strict().DecodeString(s)
}

// Key is a named 32-byte key. Its bytes are unexported and every way of
// printing or marshalling it yields the name only, so a Key can be logged or
// embedded in a config struct without leaking.
type Key struct {
	name  string
	bytes []byte
}

// NewKey decodes material with enc and names the result (for example
// "decryption_key[1]"); the name is what logs and errors show.
func NewKey(name, material string, enc Encoding) (Key, error) {
	b, err := DecodeKey(material, enc)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", name, err)
	}
	return Key{name: name, bytes: b}, nil
}

// Name is the label given to NewKey.
func (k Key) Name() string { return k.name }

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.bytes) == 0 }

// String implements fmt.Stringer without revealing the key.
func (k Key) String() string { return "key(" + k.name + ", " + Redacted + ")" }

// GoString implements fmt.GoStringer without revealing the key.
func (k Key) GoString() string { return k.String() }

// MarshalText keeps the key out of JSON, YAML and text encodings.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Format implements fmt.Formatter so that no verb (%d and %x included) can
// print the key bytes.
func (k Key) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }
