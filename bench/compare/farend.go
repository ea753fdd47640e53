package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/qrphgate/qrphgate/crypto"
)

// The test credentials: fake, shaped like the real ones.
const (
	benchKey        = "TEST-ONLY-fake-key-do-not-use-32"
	benchSignSecret = "whsec_VEVTVC1PTkxZLWZha2Utc2lnbmluZy1rZXktMzJieSE="
	benchActivation = "A9X4-B7P2-Q6Z8-M3L5"
)

// farEnd is the provider and the app in one: the provider answers every
// create-QR call with one precomputed answer ({"Token": JWE} of
// {"id","qrBody"} under the test key, a 1200-byte PNG) without decrypting
// anything, so modulus_api and a plain reverse_proxy in front of it do the
// same network work; the app counts the webhooks delivered to it.
type farEnd struct {
	provider, app string // host:port

	mu         sync.Mutex
	deliveries map[string]int // Webhook-Id -> count
}

func startFarEnd() *farEnd {
	k, err := crypto.NewKey("bench", benchKey, crypto.EncodingUTF8)
	must(err)
	enc, err := crypto.NewEncrypter(k)
	must(err)
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), bytes.Repeat([]byte{0x42}, 1200-16)...)
	plain, _ := json.Marshal(map[string]string{"id": "a78efd32-de3b-4854-b599-11ae9f98f97e", "qrBody": base64.StdEncoding.EncodeToString(png)})
	tok, err := enc.Encrypt(plain)
	must(err)
	answer := []byte(`{"Token":"` + tok + `"}`)
	f := &farEnd{deliveries: map[string]int{}}

	prov := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/ping" {
			_, _ = io.WriteString(w, "Pong!")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/deliveries" {
			f.mu.Lock()
			f.deliveries[r.Header.Get("Webhook-Id")]++
			f.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"received":true}`)
	})
	f.provider = serve(prov)
	f.app = serve(app)
	return f
}

func serve(h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go func() { _ = http.Serve(ln, h) }()
	return ln.Addr().String()
}

func (f *farEnd) delivered() (distinct, repeated int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.deliveries {
		distinct++
		if c > 1 {
			repeated++
		}
	}
	return distinct, repeated
}

// sealWebhooks makes n distinct webhook bodies, each a real compact JWE.
func sealWebhooks(prefix string, n int) [][]byte {
	k, err := crypto.NewKey("bench", benchKey, crypto.EncodingUTF8)
	must(err)
	enc, err := crypto.NewEncrypter(k)
	must(err)
	out := make([][]byte, n)
	for i := range out {
		pt := `{"action":"QRPH_SUCCESS","referenceNumber":"` + prefix + "-" + itoa(i) + `","amount":` + itoa(100+i) +
			`,"currency":"PHP","timestamp":"2026-01-15T10:30:00Z"}`
		tok, err := enc.Encrypt([]byte(pt))
		must(err)
		out[i] = []byte(`{"data":"` + tok + `"}`)
	}
	return out
}
