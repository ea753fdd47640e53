// Command standin is the fast upstream of the outbound load test: it answers
// every POST /v1/pay/qr with one precomputed create-QR answer ({"Token": JWE}
// of {"id","qrBody"} under the test key), without decrypting anything, so
// that modulus_api and a plain reverse_proxy in front of it do the same
// network work and differ only by what the gateway itself does.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"

	"github.com/qrphgate/qrphgate/crypto"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	key := flag.String("key", "TEST-ONLY-fake-key-do-not-use-32", "32-byte A256KW key (test key)")
	qrBytes := flag.Int("qr-bytes", 1200, "size of the fake PNG in the answer")
	flag.Parse()
	k, err := crypto.NewKey("-key", *key, crypto.EncodingUTF8)
	if err != nil {
		log.Fatal(err)
	}
	// A PNG signature followed by filler: the gateway only base64-checks it.
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0x42}, *qrBytes-8)...)
	plain, _ := json.Marshal(map[string]string{"id": "a78efd32-de3b-4854-b599-11ae9f98f97e", "qrBody": base64.StdEncoding.EncodeToString(png)})
	enc, err := crypto.NewEncrypter(k)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := enc.Encrypt(plain)
	if err != nil {
		log.Fatal(err)
	}
	answer := []byte(`{"Token":"` + tok + `"}`)

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/ping" {
			_, _ = io.WriteString(w, "Pong!")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	log.Printf("stand-in on %s (answer %d bytes)", *addr, len(answer))
	log.Fatal(http.ListenAndServe(*addr, h))
}
