package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func mustKey(t testing.TB, name, material string) Key {
	t.Helper()
	k, err := NewKey(name, material, EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	kr, err := NewKeyring(0, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func mustEncrypt(t testing.TB, k Key, pt string) string {
	t.Helper()
	e, err := NewEncrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.Encrypt([]byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTripAndHeader(t *testing.T) {
	k := mustKey(t, "encryption_key", testKeyUTF8)
	pt := `{"amount":"500.00"}`
	tok := mustEncrypt(t, k, pt)
	if !strings.HasPrefix(tok, "eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.") {
		t.Fatalf("protected header differs from the provider's: %s", strings.SplitN(tok, ".", 2)[0])
	}
	got, err := mustRing(t, k).Decrypt(tok)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Plaintext) != pt || got.KeyName != "encryption_key" || got.KeyIndex != 0 {
		t.Fatalf("Decrypt = %+v", got)
	}
	if tok2 := mustEncrypt(t, k, pt); tok2 == tok {
		t.Fatal("two encryptions of the same plaintext must differ (fresh CEK and IV)")
	}
}

// AppendEncrypt keeps what dst held and appends a token that decrypts.
func TestAppendEncrypt(t *testing.T) {
	k := mustKey(t, "encryption_key", testKeyUTF8)
	enc, err := NewEncrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	body, err := enc.AppendEncrypt([]byte(`{"Token":"`), []byte(`{"amount":"1.00"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(string(body), `{"Token":"`)
	if !ok {
		t.Fatalf("the prefix is gone: %q", body)
	}
	got, err := mustRing(t, k).Decrypt(tok)
	if err != nil || string(got.Plaintext) != `{"amount":"1.00"}` {
		t.Fatalf("Decrypt = %+v %v", got, err)
	}
}

func TestKeyringTriesInOrderAndReportsKey(t *testing.T) {
	oldKey := mustKey(t, "decryption_key[0]", strings.Repeat("o", 32))
	newKey := mustKey(t, "decryption_key[1]", strings.Repeat("n", 32))
	kr := mustRing(t, oldKey, newKey)
	for _, tc := range []struct {
		k     Key
		index int
	}{{oldKey, 0}, {newKey, 1}} {
		got, err := kr.Decrypt(mustEncrypt(t, tc.k, "{}"))
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyIndex != tc.index || got.KeyName != tc.k.Name() {
			t.Fatalf("decrypted with %d %q, want %d %q", got.KeyIndex, got.KeyName, tc.index, tc.k.Name())
		}
	}
	if names := kr.Keys(); len(names) != 2 || names[1] != "decryption_key[1]" {
		t.Fatalf("Keys() = %v", names)
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	if _, err := NewKeyring(0); err == nil {
		t.Fatal("an empty keyring must be refused")
	}
	if _, err := NewKeyring(0, Key{name: "short", bytes: make([]byte, 16)}); !errors.Is(err, ErrKeySize) {
		t.Fatalf("16-byte key: err = %v, want ErrKeySize", err)
	}
	if _, err := NewEncrypter(Key{name: "long", bytes: make([]byte, 48)}); !errors.Is(err, ErrKeySize) {
		t.Fatalf("48-byte key: err = %v, want ErrKeySize", err)
	}
}

// forge replaces the protected header of a valid token (the tag no longer
// matches, but every header check must fire before decryption is tried).
func forge(tok, header string) string {
	_, rest, _ := strings.Cut(tok, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + rest
}

func TestDecryptRejections(t *testing.T) {
	k := mustKey(t, "k", testKeyUTF8)
	kr := mustRing(t, k)
	good := mustEncrypt(t, k, `{"action":"QRPH_SUCCESS"}`)
	seg := strings.Split(good, ".")
	other := mustEncrypt(t, mustKey(t, "other", strings.Repeat("x", 32)), `{}`)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrTokenEmpty},
		{"oversized", good + strings.Repeat("A", DefaultMaxTokenBytes), ErrTokenTooLarge},
		{"four segments", strings.Join(seg[:4], "."), ErrMalformed},
		{"six segments", good + ".AAAA", ErrMalformed},
		{"truncated tag", good[:len(good)-5], ErrMalformed},
		{"truncated ciphertext", strings.Join([]string{seg[0], seg[1], seg[2], seg[3][:len(seg[3])-4], seg[4]}, "."), ErrMalformed},
		{"padding characters", good + "==", ErrMalformed},
		{"standard base64 alphabet", strings.Replace(good, seg[1], strings.Repeat("+", len(seg[1])), 1), ErrMalformed},
		{"header not JSON", forge(good, `not json`), ErrMalformed},
		{"header is an array", forge(good, `["A256KW"]`), ErrMalformed},
		{"header trailing data", forge(good, `{"alg":"A256KW","enc":"A256CBC-HS512"}{}`), ErrMalformed},
		{"duplicate alg", forge(good, `{"alg":"dir","alg":"A256KW","enc":"A256CBC-HS512"}`), ErrMalformed},
		{"crit", forge(good, `{"alg":"A256KW","enc":"A256CBC-HS512","crit":["exp"],"exp":1}`), ErrMalformed},
		{"alg not a string", forge(good, `{"alg":1,"enc":"A256CBC-HS512"}`), ErrMalformed},
		{"zip", forge(good, `{"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF"}`), ErrCompression},
		{"alg none", forge(good, `{"alg":"none","enc":"A256CBC-HS512"}`), ErrAlgorithm},
		{"alg dir", forge(good, `{"alg":"dir","enc":"A256CBC-HS512"}`), ErrAlgorithm},
		{"alg RSA-OAEP", forge(good, `{"alg":"RSA-OAEP","enc":"A256CBC-HS512"}`), ErrAlgorithm},
		{"alg missing", forge(good, `{"enc":"A256CBC-HS512"}`), ErrAlgorithm},
		{"enc A256GCM", forge(good, `{"alg":"A256KW","enc":"A256GCM"}`), ErrEncryption},
		{"enc missing", forge(good, `{"alg":"A256KW"}`), ErrEncryption},
		{"header tampered but allowed", forge(good, `{"alg":"A256KW","enc":"A256CBC-HS512","kid":"x"}`), ErrDecrypt},
		{"ciphertext tampered", strings.Join([]string{seg[0], seg[1], seg[2], flip(seg[3], 0), seg[4]}, "."), ErrDecrypt},
		{"tag tampered", strings.Join([]string{seg[0], seg[1], seg[2], seg[3], flip(seg[4], 0)}, "."), ErrDecrypt},
		{"wrapped key tampered", strings.Join([]string{seg[0], flip(seg[1], 0), seg[2], seg[3], seg[4]}, "."), ErrDecrypt},
		{"wrong key", other, ErrDecrypt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kr.Decrypt(tc.tok)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got.Plaintext != nil {
				t.Fatal("a rejected token must yield no plaintext")
			}
			for _, other := range []error{ErrTokenEmpty, ErrTokenTooLarge, ErrMalformed, ErrAlgorithm, ErrEncryption, ErrCompression, ErrDecrypt} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("err %v matches both %v and %v: errors must be distinct", err, tc.want, other)
				}
			}
		})
	}
}

func TestCustomSizeLimit(t *testing.T) {
	k := mustKey(t, "k", testKeyUTF8)
	tok := mustEncrypt(t, k, strings.Repeat("x", 1000))
	kr, err := NewKeyring(len(tok)-1, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Decrypt(tok); !errors.Is(err, ErrTokenTooLarge) {
		t.Fatalf("err = %v, want ErrTokenTooLarge", err)
	}
	kr, _ = NewKeyring(len(tok), k)
	if got, err := kr.Decrypt(tok); err != nil || !bytes.Equal(got.Plaintext, []byte(strings.Repeat("x", 1000))) {
		t.Fatalf("token at the limit: %v", err)
	}
}

func TestErrorsDoNotEchoHostileHeaders(t *testing.T) {
	k := mustKey(t, "k", testKeyUTF8)
	good := mustEncrypt(t, k, "{}")
	long := strings.Repeat("Z", 500)
	_, err := mustRing(t, k).Decrypt(forge(good, `{"alg":"`+long+`","enc":"A256CBC-HS512"}`))
	if !errors.Is(err, ErrAlgorithm) || strings.Contains(err.Error(), long[:100]) {
		t.Fatalf("err = %v: must be ErrAlgorithm with the value cut short", err)
	}
}
