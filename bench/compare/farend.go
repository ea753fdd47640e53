package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
)

// The test credentials: fake, shaped like the real ones.
const (
	benchKey        = "TEST-ONLY-fake-key-do-not-use-32"
	benchSignSecret = "whsec_VEVTVC1PTkxZLWZha2Utc2lnbmluZy1rZXktMzJieSE="
	benchActivation = "A9X4-B7P2-Q6Z8-M3L5"
)

// farEnd is the provider and the app in one: the provider answers every
// create-QR call with {"Token": JWE} of {"id","qrBody"} under the test key
// (a 1200-byte PNG), a fresh transaction id each time (so the gateway's
// ledger records every QR, as in production), without decrypting the
// request, so modulus_api and a plain reverse_proxy in front of it do the
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
	qrBody, _ := json.Marshal(base64.StdEncoding.EncodeToString(png))
	var seq atomic.Int64
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	f := &farEnd{deliveries: map[string]int{}}

	prov := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/ping" {
			_, _ = io.WriteString(w, "Pong!")
			return
		}
		id := "tx-" + run + "-" + strconv.FormatInt(seq.Add(1), 10)
		tok, err := enc.AppendEncrypt([]byte(`{"Token":"`), []byte(`{"id":"`+id+`","qrBody":`+string(qrBody)+`}`))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tok = append(tok, `"}`...)
		// A length, as an API answer carries (without one, Go's server
		// would chunk an answer this size).
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(tok)))
		_, _ = w.Write(tok)
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

// sealWebhooks makes n distinct webhook bodies, each a real compact JWE:
// the payment of the QR with reference prefix-i, 500.00 PHP (created first
// through modulus_api, so that the ledger matches each result to its QR).
func sealWebhooks(prefix string, n int) [][]byte {
	k, err := crypto.NewKey("bench", benchKey, crypto.EncodingUTF8)
	must(err)
	enc, err := crypto.NewEncrypter(k)
	must(err)
	out := make([][]byte, n)
	for i := range out {
		pt := `{"action":"QRPH_SUCCESS","referenceNumber":"` + prefix + "-" + itoa(i) + `","amount":50000` +
			`,"currency":"PHP","timestamp":"2026-01-15T10:30:00Z"}`
		tok, err := enc.Encrypt([]byte(pt))
		must(err)
		out[i] = []byte(`{"data":"` + tok + `"}`)
	}
	return out
}
