package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Encryption at rest. A Sealer encrypts the part of a record that holds
// payment data (a webhook's body, reference and activation code; an
// idempotent answer; a ledger entry) with AES-256-GCM from the standard
// library, binding it to the record's key (its id, Redis key or bbolt key)
// as additional data, so a sealed value moved to another record does not
// open. A sealed value is
//
//	0x01 | key id (4 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// The key id (the first 4 bytes of HMAC-SHA-256(key, "qrphgate at-rest
// key id")) names the key that sealed it, so a Sealer holding several keys
// (a rotation: the first seals, all open) picks the right one at once and
// knows which records a re-encryption pass must rewrite.
//
// Fields used for lookups (a reference) are kept as a blind index instead
// of the plain value: HMAC-SHA-256 under a key derived from the at-rest key,
// so equal values match without the value being stored.

// SealKeySize is the length of an at-rest key: AES-256.
const SealKeySize = 32

const (
	sealFormat   = 0x01
	sealIDSize   = 4
	sealOverhead = 1 + sealIDSize + 12 + 16
)

// ErrUndecryptable is a sealed value that no key of the Sealer opens: it
// was sealed with a key that is not configured (any more), or it was
// altered. The errors that wrap it say which, never the value.
var ErrUndecryptable = errors.New("undecryptable")

// Sealer seals and opens records with a list of keys: the first seals,
// every one opens. It is immutable and safe for concurrent use.
type Sealer struct {
	keys []sealKey
}

type sealKey struct {
	id    [sealIDSize]byte
	aead  cipher.AEAD
	blind []byte // the blind index's HMAC key
}

// NewSealer returns a Sealer for keys (each SealKeySize bytes), the first
// sealing. Two keys with the same key id (the same key given twice) are an
// error.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("at-rest encryption needs at least one key")
	}
	s := &Sealer{keys: make([]sealKey, len(keys))}
	for i, k := range keys {
		if len(k) != SealKeySize {
			return nil, fmt.Errorf("at-rest key %d must be %d bytes, not %d", i+1, SealKeySize, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("at-rest key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("at-rest key %d: %w", i+1, err)
		}
		sk := sealKey{aead: aead, blind: derive(k, "qrphgate at-rest blind index")}
		copy(sk.id[:], derive(k, "qrphgate at-rest key id"))
		for j := 0; j < i; j++ {
			if s.keys[j].id == sk.id {
				return nil, fmt.Errorf("at-rest keys %d and %d are the same key", j+1, i+1)
			}
		}
		s.keys[i] = sk
	}
	return s, nil
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// KeyIDs returns the keys' ids (hex), the sealing key first: what the
// status page shows, never the keys.
func (s *Sealer) KeyIDs() []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = hex.EncodeToString(k.id[:])
	}
	return out
}

// Seal encrypts plain for the record named aad.
func (s *Sealer) Seal(aad string, plain []byte) []byte {
	k := &s.keys[0]
	out := make([]byte, 1+sealIDSize+12, sealOverhead+len(plain))
	out[0] = sealFormat
	copy(out[1:], k.id[:])
	nonce := out[1+sealIDSize:]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return k.aead.Seal(out, nonce, plain, []byte(aad))
}

// Open decrypts a value Seal made for the record named aad. It returns
// the plaintext and whether the value must be sealed again with the
// current key (it was sealed with an older one). Every failure wraps
// ErrUndecryptable.
func (s *Sealer) Open(aad string, sealed []byte) (plain []byte, stale bool, err error) {
	if len(sealed) < sealOverhead || sealed[0] != sealFormat {
		return nil, false, fmt.Errorf("%w: not a sealed value", ErrUndecryptable)
	}
	id := sealed[1 : 1+sealIDSize]
	for i := range s.keys {
		k := &s.keys[i]
		if !hmac.Equal(k.id[:], id) {
			continue
		}
		nonce, ct := sealed[1+sealIDSize:1+sealIDSize+12], sealed[1+sealIDSize+12:]
		plain, err := k.aead.Open(nil, nonce, ct, []byte(aad))
		if err != nil {
			return nil, false, fmt.Errorf("%w: authentication failed (altered, or moved from another record)", ErrUndecryptable)
		}
		return plain, i > 0, nil
	}
	return nil, false, fmt.Errorf("%w: sealed with key id %x, which is not configured", ErrUndecryptable, id)
}

// SealedKeyID returns the key id (hex) a sealed value names, or "" for a
// value that is not one; for listings and tests.
func SealedKeyID(sealed []byte) string {
	if len(sealed) < sealOverhead || sealed[0] != sealFormat {
		return ""
	}
	return hex.EncodeToString(sealed[1 : 1+sealIDSize])
}

// Blind returns the blind index of value under the sealing key: 32 hex
// digits (128 bits of HMAC-SHA-256), "" for "".
func (s *Sealer) Blind(value string) string { return s.keys[0].blindOf(value) }

// Blinds returns value's blind index under every key, the sealing key's
// first: a lookup during a rotation matches records indexed under any.
func (s *Sealer) Blinds(value string) []string {
	out := make([]string, len(s.keys))
	for i := range s.keys {
		out[i] = s.keys[i].blindOf(value)
	}
	return out
}

func (k *sealKey) blindOf(value string) string {
	if value == "" {
		return ""
	}
	m := hmac.New(sha256.New, k.blind)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// AtRest is the process's at-rest setting, shared by every back end that
// writes to disk or Redis: the Sealer in use (nil: records are written in
// plain text, as before encryption at rest existed). It changes when a
// configuration with other keys starts, and the back ends follow at their
// next write. A nil *AtRest is valid and never seals.
type AtRest struct {
	cur atomic.Pointer[Sealer]
	// set is when the Sealer was last set (Unix ns): for a while after,
	// lookups also try the names records had before (see Redis.Begin).
	set atomic.Int64

	mu      sync.Mutex
	changed chan struct{}
}

// NewAtRest returns a setting holding s (nil: plain).
func NewAtRest(s *Sealer) *AtRest {
	a := &AtRest{changed: make(chan struct{})}
	a.cur.Store(s)
	a.set.Store(time.Now().UnixNano())
	return a
}

// changedWithin reports whether the Sealer was set less than d ago.
func (a *AtRest) changedWithin(d time.Duration) bool {
	return a != nil && time.Since(time.Unix(0, a.set.Load())) < d
}

// Sealer is the Sealer in use, or nil.
func (a *AtRest) Sealer() *Sealer {
	if a == nil {
		return nil
	}
	return a.cur.Load()
}

// Set replaces the Sealer in use and wakes every Changed waiter.
func (a *AtRest) Set(s *Sealer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur.Store(s)
	a.set.Store(time.Now().UnixNano())
	close(a.changed)
	a.changed = make(chan struct{})
}

// Changed returns a channel closed at the next Set (never, for nil).
func (a *AtRest) Changed() <-chan struct{} {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// packFields encodes the fields of a record's payment part to be sealed as
// one value: each length-prefixed (uvarint), in order.
func packFields(fields ...[]byte) []byte {
	n := 0
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// unpackFields reads n fields packFields wrote.
func unpackFields(b []byte, n int) ([][]byte, error) {
	d := decoder{b: b}
	out := make([][]byte, n)
	for i := range out {
		out[i] = d.bytes()
	}
	if d.err || len(d.b) != 0 {
		return nil, errCorruptRecord
	}
	return out, nil
}

// current reports whether sealed was sealed with the sealing key.
func (s *Sealer) current(sealed []byte) bool {
	return len(sealed) >= sealOverhead && sealed[0] == sealFormat && hmac.Equal(sealed[1:1+sealIDSize], s.keys[0].id[:])
}
