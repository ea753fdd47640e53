package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
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
		// Whatever go-jose accepts, the independent implementation must
		// accept with the same plaintext.
		ref, rerr := refDecrypt(k.bytes, tok)
		if rerr != nil || !bytes.Equal(ref, got.Plaintext) {
			t.Fatalf("go-jose and the reference disagree on %q: %v", tok, rerr)
		}
	})
}
