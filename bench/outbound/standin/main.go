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

	jose "github.com/go-jose/go-jose/v4"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	key := flag.String("key", "TEST-ONLY-fake-key-do-not-use-32", "32-byte A256KW key (test key)")
	qrBytes := flag.Int("qr-bytes", 1200, "size of the fake PNG in the answer")
	flag.Parse()
	if len(*key) != 32 {
		log.Fatal("-key must be 32 bytes")
	}
	// A PNG signature followed by filler: the gateway only base64-checks it.
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0x42}, *qrBytes-8)...)
	plain, _ := json.Marshal(map[string]string{"id": "a78efd32-de3b-4854-b599-11ae9f98f97e", "qrBody": base64.StdEncoding.EncodeToString(png)})
	enc, err := jose.NewEncrypter(jose.A256CBC_HS512, jose.Recipient{Algorithm: jose.A256KW, Key: []byte(*key)}, nil)
	if err != nil {
		log.Fatal(err)
	}
	obj, err := enc.Encrypt(plain)
	if err != nil {
		log.Fatal(err)
	}
	tok, _ := obj.CompactSerialize()
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
