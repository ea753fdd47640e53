package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	josecipher "github.com/go-jose/go-jose/v4/cipher"
)

// The one algorithm pair Modulus Labs uses, in both directions.
const (
	KeyAlgorithm      = jose.A256KW
	ContentEncryption = jose.A256CBC_HS512
)

// DefaultMaxTokenBytes caps a compact token before any parsing. A create-QR
// answer carries a base64 PNG of a few kilobytes; 256 KiB leaves ample room.
const DefaultMaxTokenBytes = 256 << 10

// cekSize is the A256CBC-HS512 content key: 32 bytes of HMAC-SHA-512 key,
// then 32 of AES-256 key; the tag is HMAC-SHA-512 truncated to 32 bytes.
const (
	cekSize = 64
	tagSize = 32
)

// Compact-token shape for A256KW + A256CBC-HS512: a wrapped 64-byte CEK is
// 72 bytes, the IV 16 bytes and the tag 32 bytes, base64url without padding.
const (
	encryptedKeyChars = 96
	ivChars           = 22
	tagChars          = 43
	maxHeaderChars    = 1024
)

// Distinct errors for every way a token is refused, so callers can map them
// to stable codes and metrics. They are checked in this order, cheapest
// first, and nothing expensive runs before the shape checks pass.
var (
	ErrTokenEmpty    = errors.New("jwe: token is empty")
	ErrTokenTooLarge = errors.New("jwe: token exceeds the size limit")
	ErrMalformed     = errors.New("jwe: not a compact JWE")
	ErrAlgorithm     = errors.New("jwe: key algorithm not allowed")
	ErrEncryption    = errors.New("jwe: content encryption not allowed")
	ErrCompression   = errors.New("jwe: compressed tokens are not accepted")
	ErrDecrypt       = errors.New("jwe: no configured key decrypts the token")
)

// Header is the part of a protected header that the profile cares about.
type Header struct {
	Algorithm   string
	Encryption  string
	ContentType string
	KeyID       string
}

// CheckCompact validates a compact token's shape and protected header
// without any cryptography: size, five base64url segments with the lengths
// A256KW + A256CBC-HS512 produce, and a header naming exactly that pair, no
// "zip", no "crit" and no duplicate members. maxBytes <= 0 means
// DefaultMaxTokenBytes.
func CheckCompact(tok string, maxBytes int) (Header, error) {
	h, _, err := checkCompact(tok, maxBytes)
	return h, err
}

// checkCompact is CheckCompact, also returning the five segments.
func checkCompact(tok string, maxBytes int) (_ Header, seg [5]string, _ error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxTokenBytes
	}
	switch {
	case tok == "":
		return Header{}, seg, ErrTokenEmpty
	case len(tok) > maxBytes:
		return Header{}, seg, fmt.Errorf("%w (%d bytes, limit %d)", ErrTokenTooLarge, len(tok), maxBytes)
	}
	rest := tok
	for i := range 4 {
		var ok bool
		seg[i], rest, ok = strings.Cut(rest, ".")
		if !ok {
			return Header{}, seg, fmt.Errorf("%w: %d segments, want 5", ErrMalformed, i+1)
		}
	}
	if strings.Contains(rest, ".") {
		return Header{}, seg, fmt.Errorf("%w: more than 5 segments", ErrMalformed)
	}
	seg[4] = rest
	for i, s := range seg {
		if !isBase64URL(s) {
			return Header{}, seg, fmt.Errorf("%w: segment %d is not unpadded base64url", ErrMalformed, i+1)
		}
	}
	if len(seg[0]) == 0 || len(seg[0]) > maxHeaderChars {
		return Header{}, seg, fmt.Errorf("%w: protected header of %d characters", ErrMalformed, len(seg[0]))
	}
	h := canonical
	if seg[0] != canonicalHeader {
		var err error
		if h, err = parseHeader(seg[0]); err != nil {
			return Header{}, seg, err
		}
	}
	// Lengths are checked after the header so that a foreign algorithm is
	// reported as such rather than as a malformed token.
	switch {
	case len(seg[1]) != encryptedKeyChars:
		return h, seg, fmt.Errorf("%w: encrypted key segment of %d characters, want %d", ErrMalformed, len(seg[1]), encryptedKeyChars)
	case len(seg[2]) != ivChars:
		return h, seg, fmt.Errorf("%w: iv segment of %d characters, want %d", ErrMalformed, len(seg[2]), ivChars)
	case len(seg[4]) != tagChars:
		return h, seg, fmt.Errorf("%w: tag segment of %d characters, want %d", ErrMalformed, len(seg[4]), tagChars)
	case len(seg[3]) == 0 || base64.RawURLEncoding.DecodedLen(len(seg[3]))%16 != 0:
		return h, seg, fmt.Errorf("%w: ciphertext is not a whole number of AES blocks", ErrMalformed)
	}
	return h, seg, nil
}

// canonicalHeader is {"alg":"A256KW","enc":"A256CBC-HS512"} encoded, what
// both the provider and go-jose send; it skips JSON parsing on the hot path.
const canonicalHeader = "eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0"

var canonical = Header{Algorithm: string(KeyAlgorithm), Encryption: string(ContentEncryption)}

// base64URLAlphabet marks the bytes of the unpadded base64url alphabet; a
// table lookup per byte, since every token's kilobytes pass through here.
var base64URLAlphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64URLAlphabet[s[i]] {
			return false
		}
	}
	// A length of 1 mod 4 cannot come out of base64.
	return len(s)%4 != 1
}

// parseHeader decodes the protected header, rejecting duplicate members (a
// header must not mean one thing to us and another to go-jose) and checking
// the algorithm allow-lists.
func parseHeader(seg string) (Header, error) {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return Header{}, fmt.Errorf("%w: protected header is not base64url", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return Header{}, fmt.Errorf("%w: protected header is not a JSON object", ErrMalformed)
	}
	var h Header
	seen := make(map[string]bool, 4)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return Header{}, fmt.Errorf("%w: protected header is not valid JSON", ErrMalformed)
		}
		name := t.(string)
		if seen[name] {
			return Header{}, fmt.Errorf("%w: protected header repeats %s", ErrMalformed, quoteShort(name))
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return Header{}, fmt.Errorf("%w: protected header is not valid JSON", ErrMalformed)
		}
		var dst *string
		switch name {
		case "alg":
			dst = &h.Algorithm
		case "enc":
			dst = &h.Encryption
		case "cty":
			dst = &h.ContentType
		case "kid":
			dst = &h.KeyID
		case "zip":
			return Header{}, ErrCompression
		case "crit":
			return Header{}, fmt.Errorf("%w: critical header extensions are not supported", ErrMalformed)
		default:
			continue // typ and private members carry no meaning for us
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return Header{}, fmt.Errorf("%w: header member %s is not a string", ErrMalformed, name)
		}
	}
	if _, err := dec.Token(); err != nil {
		return Header{}, fmt.Errorf("%w: protected header is not valid JSON", ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Header{}, fmt.Errorf("%w: trailing data after protected header", ErrMalformed)
	}
	if h.Algorithm != string(KeyAlgorithm) {
		return h, fmt.Errorf("%w: %s (want %s)", ErrAlgorithm, quoteShort(h.Algorithm), KeyAlgorithm)
	}
	if h.Encryption != string(ContentEncryption) {
		return h, fmt.Errorf("%w: %s (want %s)", ErrEncryption, quoteShort(h.Encryption), ContentEncryption)
	}
	return h, nil
}

// quoteShort quotes attacker-controlled text for an error message, bounded
// so a hostile header cannot flood the logs.
func quoteShort(s string) string {
	const limit = 32
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strconv.Quote(s)
}

// Encrypter produces compact A256KW + A256CBC-HS512 tokens with one key. It
// is safe for concurrent use: every call draws a fresh CEK and IV.
type Encrypter struct {
	key  Key
	kek  cipher.Block // AES-256 with key: immutable, safe for concurrent use
	rand io.Reader
}

// NewEncrypter prepares an Encrypter for key.
func NewEncrypter(key Key) (*Encrypter, error) {
	if len(key.bytes) != KeySize {
		return nil, fmt.Errorf("%s: %w", key.name, ErrKeySize)
	}
	kek, err := aes.NewCipher(key.bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: preparing encrypter: %w", key.name, err)
	}
	return &Encrypter{key: key, kek: kek, rand: rand.Reader}, nil
}

// Encrypt seals plaintext into a compact token whose protected header is
// exactly {"alg":"A256KW","enc":"A256CBC-HS512"}, as in the provider's docs.
// The token is assembled here (RFC 7516 7.1) around go-jose's primitives, as
// in Keyring.Decrypt: a random 64-byte content key wrapped with the key
// (RFC 3394), a random IV, and AES-CBC + HMAC-SHA-512 over the plaintext
// with the encoded header as additional data.
func (e *Encrypter) Encrypt(plaintext []byte) (string, error) {
	tok, err := e.AppendEncrypt(nil, plaintext)
	return string(tok), err
}

// AppendEncrypt is Encrypt appending the compact token to dst, so that a
// caller can build the request body around it in one buffer.
func (e *Encrypter) AppendEncrypt(dst, plaintext []byte) ([]byte, error) {
	var buf [cekSize + aes.BlockSize]byte
	if _, err := io.ReadFull(e.rand, buf[:]); err != nil {
		return dst, fmt.Errorf("jwe: encrypting with %s: drawing a content key: %w", e.key.name, err)
	}
	cek, iv := buf[:cekSize], buf[cekSize:]
	wrapped, err := josecipher.KeyWrap(e.kek, cek)
	if err != nil {
		return dst, fmt.Errorf("jwe: encrypting with %s: %w", e.key.name, err)
	}
	aead, err := josecipher.NewCBCHMAC(cek, aes.NewCipher)
	if err != nil {
		return dst, fmt.Errorf("jwe: encrypting with %s: %w", e.key.name, err)
	}
	sealed := aead.Seal(nil, iv, plaintext, []byte(canonicalHeader))
	// Seal appends the tag (go-jose's Overhead is padding plus tag, so the
	// tag's size is the profile's, not Overhead()).
	ct, tag := sealed[:len(sealed)-tagSize], sealed[len(sealed)-tagSize:]
	b64 := base64.RawURLEncoding
	dst = slices.Grow(dst, len(canonicalHeader)+4+b64.EncodedLen(len(wrapped))+b64.EncodedLen(len(iv))+b64.EncodedLen(len(ct))+b64.EncodedLen(len(tag)))
	dst = append(dst, canonicalHeader...)
	for _, part := range [][]byte{wrapped, iv, ct, tag} {
		dst = append(dst, '.')
		dst = b64.AppendEncode(dst, part)
	}
	return dst, nil
}
