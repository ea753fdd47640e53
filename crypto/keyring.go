package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"

	josecipher "github.com/go-jose/go-jose/v4/cipher"
)

// Keyring holds the keys a token may be encrypted with, tried in order. It
// covers rotation (old and new key side by side) and the provider's own
// ambiguity about whether webhooks use the secret key or the encryption key.
// A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	keys     []Key
	keks     []cipher.Block // AES-256 with each key, same order; immutable
	maxBytes int
}

// NewKeyring returns a Keyring trying keys in the given order. maxTokenBytes
// <= 0 means DefaultMaxTokenBytes.
func NewKeyring(maxTokenBytes int, keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring needs at least one key")
	}
	keks := make([]cipher.Block, len(keys))
	for i, k := range keys {
		if len(k.bytes) != KeySize {
			return nil, fmt.Errorf("%s: %w", k.name, ErrKeySize)
		}
		var err error
		if keks[i], err = aes.NewCipher(k.bytes); err != nil {
			return nil, fmt.Errorf("%s: %w", k.name, err)
		}
	}
	return &Keyring{keys: append([]Key(nil), keys...), keks: keks, maxBytes: maxTokenBytes}, nil
}

// Keys returns the names of the keys, in the order they are tried.
func (kr *Keyring) Keys() []string {
	names := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		names[i] = k.name
	}
	return names
}

// Primary is the first key: the one to encrypt with.
func (kr *Keyring) Primary() Key { return kr.keys[0] }

// Opened is a decrypted token.
type Opened struct {
	Plaintext []byte
	Header    Header
	// KeyIndex and KeyName say which key worked, so operators can see when a
	// rotation has completed or which of two candidate keys the provider uses.
	KeyIndex int
	KeyName  string
}

// Decrypt checks the token's shape (CheckCompact) and then tries each key in
// order. Shape errors are returned as such; ErrDecrypt means the token is
// well formed but no key authenticates it (wrong key or tampered content).
//
// CheckCompact has already validated the whole container (segments, sizes,
// header), so the cryptography runs on go-jose's own primitives (RFC 3394
// key unwrap, RFC 7518 5.2 AES-CBC + HMAC-SHA-512) rather than its JWE
// parser, which would decode the header again by reflection; that costs
// more than the cryptography on a small token (see BenchmarkDecrypt).
func (kr *Keyring) Decrypt(tok string) (Opened, error) {
	h, seg, err := checkCompact(tok, kr.maxBytes)
	if err != nil {
		return Opened{}, err
	}
	// Every segment decoded into one buffer (encrypted key, iv, then
	// ciphertext||tag, which the AEAD opens), straight from the string.
	b64 := base64.RawURLEncoding
	out := make([]byte, b64.DecodedLen(len(seg[1]))+b64.DecodedLen(len(seg[2]))+b64.DecodedLen(len(seg[3]))+b64.DecodedLen(len(seg[4])))
	var n [4]int
	var errs [4]error
	at := 0
	for i := range n {
		n[i], errs[i] = decodeString(out[at:], seg[i+1])
		at += n[i]
	}
	if err := errors.Join(errs[:]...); err != nil {
		return Opened{}, fmt.Errorf("%w: a segment does not decode", ErrMalformed)
	}
	wrapped, iv := out[:n[0]:n[0]], out[n[0]:n[0]+n[1]:n[0]+n[1]]
	sealed := out[n[0]+n[1] : at : at]
	// CheckCompact's segment lengths imply these sizes; checked again here
	// because the CBC decrypter panics on any other IV size.
	if len(iv) != aes.BlockSize || len(wrapped) != cekSize+8 {
		return Opened{}, fmt.Errorf("%w: iv or encrypted key of the wrong size", ErrMalformed)
	}
	// The additional data is the encoded protected header (RFC 7516 5.2).
	aad := canonicalHeaderBytes
	if seg[0] != canonicalHeader {
		aad = []byte(seg[0])
	}
	for i, k := range kr.keys {
		if pt, ok := open(kr.keks[i], wrapped, iv, sealed, aad); ok {
			return Opened{Plaintext: pt, Header: h, KeyIndex: i, KeyName: k.name}, nil
		}
	}
	return Opened{}, fmt.Errorf("%w (tried %d)", ErrDecrypt, len(kr.keys))
}

// canonicalHeaderBytes is canonicalHeader as the AEAD's additional data
// (only read).
var canonicalHeaderBytes = []byte(canonicalHeader)

// decodeString decodes unpadded base64url s into dst (room for
// DecodedLen(len(s))) through a buffer on the stack, so a segment is not
// copied to the heap first.
func decodeString(dst []byte, s string) (int, error) {
	var chunk [1024]byte // a multiple of 4: every chunk but the last decodes whole
	n := 0
	for len(s) > 0 {
		c := copy(chunk[:], s)
		m, err := base64.RawURLEncoding.Decode(dst[n:], chunk[:c])
		n += m
		if err != nil {
			return n, err
		}
		s = s[c:]
	}
	return n, nil
}

// open unwraps the content key with kek and opens the content. Any failure
// is "not this key": the unwrap's integrity check fails for a wrong key,
// the tag check for tampered content.
func open(kek cipher.Block, wrapped, iv, sealed, aad []byte) ([]byte, bool) {
	cek, err := josecipher.KeyUnwrap(kek, wrapped)
	// A256CBC-HS512 takes a 64-byte key; a shorter one would quietly select
	// a weaker hash in NewCBCHMAC.
	if err != nil || len(cek) != cekSize {
		return nil, false
	}
	aead, err := josecipher.NewCBCHMAC(cek, aes.NewCipher)
	if err != nil {
		return nil, false
	}
	pt, err := aead.Open(nil, iv, sealed, aad)
	return pt, err == nil
}
