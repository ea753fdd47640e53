package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ and run as plain tests.

func FuzzCheckCompact(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		f.Add(v.Token)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		h, err := CheckCompact(tok, 0)
		if err != nil {
			return
		}
		if strings.Count(tok, ".") != 4 {
			t.Fatalf("accepted a token without five segments: %q", tok)
		}
		if h.Algorithm != "A256KW" || h.Encryption != "A256CBC-HS512" {
			t.Fatalf("accepted header %+v", h)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	k, err := NewKey("fuzz", testKeyUTF8, EncodingUTF8)
	if err != nil {
		f.Fatal(err)
	}
	kr, err := NewKeyring(0, k)
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range loadVectors(f).Vectors {
		f.Add(v.Token)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := kr.Decrypt(tok)
		if err != nil {
			for _, e := range []error{ErrTokenEmpty, ErrTokenTooLarge, ErrMalformed, ErrAlgorithm, ErrEncryption, ErrCompression, ErrDecrypt} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error outside the documented set: %v", err)
		}
		// Whatever we accept, the independent implementation must accept
		// with the same plaintext, and so must go-jose's whole JWE API.
		ref, rerr := refDecrypt(k.bytes, tok)
		if rerr != nil || !bytes.Equal(ref, got.Plaintext) {
			t.Fatalf("we and the reference disagree on %q: %v", tok, rerr)
		}
		obj, jerr := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{KeyAlgorithm}, []jose.ContentEncryption{ContentEncryption})
		if jerr == nil {
			var pt []byte
			if pt, jerr = obj.Decrypt(k.bytes); jerr == nil && !bytes.Equal(pt, got.Plaintext) {
				t.Fatalf("we and go-jose disagree on the plaintext of %q", tok)
			}
		}
		if jerr != nil {
			t.Fatalf("we accept %q, go-jose does not: %v", tok, jerr)
		}
	})
}
