package crypto

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

const testKeyUTF8 = "TEST-ONLY-fake-key-do-not-use-32"

func TestDecodeKey(t *testing.T) {
	raw32 := []byte("0123456789abcdef0123456789ABCDEF")
	tests := []struct {
		name     string
		material string
		enc      Encoding
		wantErr  string
		sizeErr  bool
	}{
		{name: "utf8 32 bytes", material: testKeyUTF8, enc: EncodingUTF8},
		{name: "default encoding is utf8", material: testKeyUTF8, enc: ""},
		{name: "utf8 16 bytes", material: testKeyUTF8[:16], enc: EncodingUTF8, wantErr: "decodes to 16 bytes", sizeErr: true},
		{name: "utf8 48 bytes (the docs' example length)", material: testKeyUTF8 + testKeyUTF8[:16], enc: EncodingUTF8, wantErr: "decodes to 48 bytes", sizeErr: true},
		{name: "utf8 with trailing newline", material: testKeyUTF8 + "\n", enc: EncodingUTF8, wantErr: "trailing whitespace", sizeErr: true},
		{name: "base64 padded", material: base64.StdEncoding.EncodeToString(raw32), enc: EncodingBase64},
		{name: "base64 unpadded", material: base64.RawStdEncoding.EncodeToString(raw32), enc: EncodingBase64},
		{name: "base64 of 16 bytes", material: base64.StdEncoding.EncodeToString(raw32[:16]), enc: EncodingBase64, wantErr: "decodes to 16 bytes", sizeErr: true},
		{name: "base64 of 48 bytes", material: base64.StdEncoding.EncodeToString(append(raw32, raw32[:16]...)), enc: EncodingBase64, wantErr: "decodes to 48 bytes", sizeErr: true},
		{name: "base64 with url alphabet", material: "-_" + base64.RawStdEncoding.EncodeToString(raw32)[2:], enc: EncodingBase64, wantErr: "not valid base64"},
		{name: "base64url padded", material: base64.URLEncoding.EncodeToString(raw32), enc: EncodingBase64URL},
		{name: "base64url unpadded", material: base64.RawURLEncoding.EncodeToString(raw32), enc: EncodingBase64URL},
		{name: "hex", material: hex.EncodeToString(raw32), enc: EncodingHex},
		{name: "hex odd length", material: hex.EncodeToString(raw32)[1:], enc: EncodingHex, wantErr: "not valid hex"},
		{name: "hex of 48 bytes", material: hex.EncodeToString(append(raw32, raw32[:16]...)), enc: EncodingHex, wantErr: "decodes to 48 bytes", sizeErr: true},
		{name: "empty", material: "", enc: EncodingUTF8, wantErr: "key is empty"},
		{name: "unknown encoding", material: testKeyUTF8, enc: "rot13", wantErr: "unknown key encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := DecodeKey(tc.material, tc.enc)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeKey: %v", err)
				}
				if len(b) != KeySize {
					t.Fatalf("got %d bytes", len(b))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrKeySize) != tc.sizeErr {
				t.Fatalf("errors.Is(err, ErrKeySize) = %v, want %v", !tc.sizeErr, tc.sizeErr)
			}
			if len(tc.material) >= 8 && strings.Contains(err.Error(), tc.material[:8]) {
				t.Fatalf("error reveals key material: %v", err)
			}
		})
	}
}

func TestParseEncoding(t *testing.T) {
	for _, e := range Encodings {
		got, err := ParseEncoding(string(e))
		if err != nil || got != e {
			t.Fatalf("ParseEncoding(%q) = %q, %v", e, got, err)
		}
	}
	if got, err := ParseEncoding(""); err != nil || got != EncodingUTF8 {
		t.Fatalf("empty encoding = %q, %v; want utf8", got, err)
	}
	if _, err := ParseEncoding("UTF8"); err == nil {
		t.Fatal("encodings are case-sensitive; UTF8 should be refused")
	}
}

func TestNewKeyNamesFieldNotValue(t *testing.T) {
	_, err := NewKey("encryption_key", "sk_test_short", EncodingUTF8)
	if err == nil || !strings.HasPrefix(err.Error(), "encryption_key: ") {
		t.Fatalf("error = %v, want it to start with the field name", err)
	}
	if strings.Contains(err.Error(), "sk_test_short") {
		t.Fatalf("error reveals the value: %v", err)
	}
}
