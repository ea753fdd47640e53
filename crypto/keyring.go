package crypto

import (
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Keyring holds the keys a token may be encrypted with, tried in order. It
// covers rotation (old and new key side by side) and the provider's own
// ambiguity about whether webhooks use the secret key or the encryption key.
// A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	keys     []Key
	maxBytes int
}

// NewKeyring returns a Keyring trying keys in the given order. maxTokenBytes
// <= 0 means DefaultMaxTokenBytes.
func NewKeyring(maxTokenBytes int, keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring needs at least one key")
	}
	for _, k := range keys {
		if len(k.bytes) != KeySize {
			return nil, fmt.Errorf("%s: %w", k.name, ErrKeySize)
		}
	}
	return &Keyring{keys: append([]Key(nil), keys...), maxBytes: maxTokenBytes}, nil
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
func (kr *Keyring) Decrypt(tok string) (Opened, error) {
	h, err := CheckCompact(tok, kr.maxBytes)
	if err != nil {
		return Opened{}, err
	}
	obj, err := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{KeyAlgorithm}, []jose.ContentEncryption{ContentEncryption})
	if err != nil {
		return Opened{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for i, k := range kr.keys {
		pt, err := obj.Decrypt(k.bytes)
		if err == nil {
			return Opened{Plaintext: pt, Header: h, KeyIndex: i, KeyName: k.name}, nil
		}
	}
	return Opened{}, fmt.Errorf("%w (tried %d)", ErrDecrypt, len(kr.keys))
}
