package crypto

// An independent, standard-library-only implementation of compact JWE with
// A256KW (RFC 3394) and A256CBC-HS512 (RFC 7518 §5.2), written from the RFCs
// for the tests: a second implementation to check go-jose's output against,
// and the floor the benchmarks compare with. Production code never uses it.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
)

var kwIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

func refWrap(kek, cek []byte) []byte {
	block, err := aes.NewCipher(kek)
	if err != nil {
		panic(err)
	}
	n := len(cek) / 8
	r := make([]byte, len(cek))
	copy(r, cek)
	var a [8]byte = kwIV
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 0; i < n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], r[i*8:i*8+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(b[:8])^t)
			copy(r[i*8:], b[8:])
		}
	}
	return append(a[:], r...)
}

func refUnwrap(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(wrapped)/8 - 1
	var a [8]byte
	copy(a[:], wrapped[:8])
	r := make([]byte, n*8)
	copy(r, wrapped[8:])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n - 1; i >= 0; i-- {
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], r[i*8:i*8+8])
			block.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(r[i*8:], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(a[:], kwIV[:]) != 1 {
		return nil, errors.New("key unwrap integrity check failed")
	}
	return r, nil
}

func refTag(macKey []byte, aad, iv, ct []byte) []byte {
	m := hmac.New(sha512.New, macKey)
	m.Write(aad)
	m.Write(iv)
	m.Write(ct)
	var al [8]byte
	binary.BigEndian.PutUint64(al[:], uint64(len(aad))*8)
	m.Write(al[:])
	return m.Sum(nil)[:32]
}

const refHeader = `{"alg":"A256KW","enc":"A256CBC-HS512"}`

func refEncrypt(kek, plaintext []byte) string {
	cek := make([]byte, 64)
	iv := make([]byte, 16)
	rand.Read(cek)
	rand.Read(iv)
	pad := 16 - len(plaintext)%16
	padded := append(append([]byte(nil), plaintext...), make([]byte, pad)...)
	for i := len(plaintext); i < len(padded); i++ {
		padded[i] = byte(pad)
	}
	block, _ := aes.NewCipher(cek[32:])
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	b64 := base64.RawURLEncoding
	h := b64.EncodeToString([]byte(refHeader))
	tag := refTag(cek[:32], []byte(h), iv, ct)
	return strings.Join([]string{h, b64.EncodeToString(refWrap(kek, cek)), b64.EncodeToString(iv), b64.EncodeToString(ct), b64.EncodeToString(tag)}, ".")
}

func refDecrypt(kek []byte, tok string) ([]byte, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 5 {
		return nil, errors.New("not five segments")
	}
	b64 := base64.RawURLEncoding
	var seg [5][]byte
	for i, p := range parts {
		var err error
		if seg[i], err = b64.DecodeString(p); err != nil {
			return nil, err
		}
	}
	cek, err := refUnwrap(kek, seg[1])
	if err != nil {
		return nil, err
	}
	if len(cek) != 64 {
		return nil, errors.New("cek is not 64 bytes")
	}
	iv, ct, tag := seg[2], seg[3], seg[4]
	if !hmac.Equal(tag, refTag(cek[:32], []byte(parts[0]), iv, ct)) {
		return nil, errors.New("authentication tag mismatch")
	}
	if len(ct) == 0 || len(ct)%16 != 0 || len(iv) != 16 {
		return nil, errors.New("bad ciphertext or iv length")
	}
	block, _ := aes.NewCipher(cek[32:])
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > 16 {
		return nil, errors.New("bad padding")
	}
	return pt[:len(pt)-pad], nil
}
