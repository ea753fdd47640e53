package crypto

import (
	"strings"
	"testing"
)

// The create-QR request (~150 B) and a create-QR answer carrying a PNG
// (~3 KB) bound what the gateway encrypts and decrypts per call.
var benchSizes = []struct {
	name string
	pt   []byte
}{
	{"request_150B", []byte(`{"activationCode":"TEST-0000-0000-0001","currency":"PHP","amount":"98.00","merchantReferenceNumber":"5e91bc6c-f7e2-4a39-ae0e-5e93985c94a4"}`)},
	{"answer_3KB", []byte(`{"id":"a78efd32-de3b-4854-b599-11ae9f98f97e","qrBody":"` + strings.Repeat("iVBORw0KGgo", 280) + `"}`)},
}

func BenchmarkEncrypt(b *testing.B) {
	k := mustKey(b, "k", testKeyUTF8)
	e, err := NewEncrypter(k)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s.pt)))
			for b.Loop() {
				if _, err := e.Encrypt(s.pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	k := mustKey(b, "k", testKeyUTF8)
	kr := mustRing(b, k)
	for _, s := range benchSizes {
		tok := mustEncrypt(b, k, string(s.pt))
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s.pt)))
			for b.Loop() {
				if _, err := kr.Decrypt(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckCompact is the cost of rejecting a token before any crypto.
func BenchmarkCheckCompact(b *testing.B) {
	tok := mustEncrypt(b, mustKey(b, "k", testKeyUTF8), string(benchSizes[0].pt))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckCompact(tok, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// The stdlib-only reference implementation: the floor go-jose is compared with.
func BenchmarkStdlibFloorEncrypt(b *testing.B) {
	k := mustKey(b, "k", testKeyUTF8)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s.pt)))
			for b.Loop() {
				refEncrypt(k.bytes, s.pt)
			}
		})
	}
}

func BenchmarkStdlibFloorDecrypt(b *testing.B) {
	k := mustKey(b, "k", testKeyUTF8)
	for _, s := range benchSizes {
		tok := refEncrypt(k.bytes, s.pt)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s.pt)))
			for b.Loop() {
				if _, err := refDecrypt(k.bytes, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
