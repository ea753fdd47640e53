package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/qrphgate/qrphgate/internal/nodejose"
)

type vectorFile struct {
	Library string `json:"library"`
	Vectors []struct {
		Name        string         `json:"name"`
		Key         string         `json:"key"`
		KeyEncoding Encoding       `json:"key_encoding"`
		Header      map[string]any `json:"header"`
		Plaintext   string         `json:"plaintext"`
		Token       string         `json:"token"`
		Expect      string         `json:"expect"`
	} `json:"vectors"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) < 10 {
		t.Fatalf("only %d vectors in testdata/vectors.json", len(vf.Vectors))
	}
	return vf
}

// TestNodeJoseVectors decrypts tokens made by panva/jose (the library the
// provider's docs use), see testdata/node/gen-vectors.mjs.
func TestNodeJoseVectors(t *testing.T) {
	vf := loadVectors(t)
	want := map[string]error{
		"ok": nil, "wrong_key": ErrDecrypt, "wrong_alg": ErrAlgorithm, "wrong_enc": ErrEncryption,
	}
	seen := map[string]bool{}
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			wantErr, known := want[v.Expect]
			if !known {
				t.Fatalf("unknown expectation %q", v.Expect)
			}
			seen[v.Expect] = true
			k, err := NewKey("vector", v.Key, v.KeyEncoding)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mustRing(t, k).Decrypt(v.Token)
			if !errors.Is(err, wantErr) {
				t.Fatalf("err = %v, want %v", err, wantErr)
			}
			if wantErr == nil && string(got.Plaintext) != v.Plaintext {
				t.Fatalf("plaintext = %q, want %q", got.Plaintext, v.Plaintext)
			}
		})
	}
	for e := range want {
		if !seen[e] {
			t.Errorf("no vector expects %q", e)
		}
	}
}

// TestGoJoseAgrees checks our token assembly (Encrypter, Keyring.Decrypt
// build on go-jose's primitives, not its JWE parser) against go-jose's whole
// JWE API, both ways.
func TestGoJoseAgrees(t *testing.T) {
	k := mustKey(t, "k", testKeyUTF8)
	enc, err := jose.NewEncrypter(ContentEncryption, jose.Recipient{Algorithm: KeyAlgorithm, Key: k.bytes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range []string{"", "{}", `{"amount":"500.00"}`, string(bytes.Repeat([]byte("q"), 4096)), "exactly sixteen!"} {
		obj, err := jose.ParseEncryptedCompact(mustEncrypt(t, k, pt), []jose.KeyAlgorithm{KeyAlgorithm}, []jose.ContentEncryption{ContentEncryption})
		if err != nil {
			t.Fatalf("go-jose parse of our token: %v", err)
		}
		if got, err := obj.Decrypt(k.bytes); err != nil || string(got) != pt {
			t.Fatalf("go-jose decrypt of our token: %q, %v", got, err)
		}
		theirs, err := enc.Encrypt([]byte(pt))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := theirs.CompactSerialize()
		opened, err := mustRing(t, k).Decrypt(tok)
		if err != nil || string(opened.Plaintext) != pt {
			t.Fatalf("our decrypt of a go-jose token: %q, %v", opened.Plaintext, err)
		}
	}
}

// TestReferenceImplementationAgrees checks our tokens with an independent
// stdlib implementation of the RFCs, and the other way round.
func TestReferenceImplementationAgrees(t *testing.T) {
	k := mustKey(t, "k", testKeyUTF8)
	for _, pt := range []string{"", "{}", `{"amount":"500.00"}`, string(bytes.Repeat([]byte("q"), 4096)), "exactly sixteen!"} {
		tok := mustEncrypt(t, k, pt)
		got, err := refDecrypt(k.bytes, tok)
		if err != nil || string(got) != pt {
			t.Fatalf("reference decrypt of our token: %q, %v", got, err)
		}
		opened, err := mustRing(t, k).Decrypt(refEncrypt(k.bytes, []byte(pt)))
		if err != nil || string(opened.Plaintext) != pt {
			t.Fatalf("our decrypt of a reference token: %q, %v", opened.Plaintext, err)
		}
	}
	// The reference decryptor also opens the Node vectors: the three agree.
	for _, v := range loadVectors(t).Vectors {
		if v.Expect != "ok" {
			continue
		}
		key, _ := DecodeKey(v.Key, v.KeyEncoding)
		if got, err := refDecrypt(key, v.Token); err != nil || string(got) != v.Plaintext {
			t.Fatalf("%s: reference decrypt: %v", v.Name, err)
		}
	}
}

// TestNodeJoseDecryptsOurTokens runs panva/jose on tokens we made. It needs
// node and testdata/node/node_modules (npm ci), which .ci/run installs.
func TestNodeJoseDecryptsOurTokens(t *testing.T) {
	dir := filepath.Join("testdata", "node")
	nodejose.Require(t, dir)
	k := mustKey(t, "k", testKeyUTF8)
	plaintexts := []string{`{"merchantReferenceNumber":"ORDER-1","amount":"500.00"}`, "{}", string(bytes.Repeat([]byte("é"), 3000))}
	var tokens []string
	for _, pt := range plaintexts {
		tokens = append(tokens, mustEncrypt(t, k, pt))
	}
	// A tampered token must fail in Node too, or the check proves nothing.
	// Flip a character well inside the tag: the last character of a
	// 43-character segment also carries unused padding bits, which a lenient
	// decoder ignores.
	bad := []byte(tokens[0])
	if bad[len(bad)-10] == 'A' {
		bad[len(bad)-10] = 'B'
	} else {
		bad[len(bad)-10] = 'A'
	}
	res := nodejose.Decrypt(t, dir, k.bytes, append(tokens, string(bad)))
	for i, pt := range plaintexts {
		if res[i].Plaintext == nil || *res[i].Plaintext != pt {
			t.Fatalf("token %d: node got %+v", i, res[i])
		}
		if len(res[i].Header) != 2 || res[i].Header["alg"] != "A256KW" || res[i].Header["enc"] != "A256CBC-HS512" {
			t.Fatalf("token %d: header %v", i, res[i].Header)
		}
	}
	if last := res[len(res)-1]; last.Plaintext != nil || last.Error == "" {
		t.Fatalf("node accepted a tampered token: %+v", last)
	}
}
