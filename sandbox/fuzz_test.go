package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/policy"
)

// FuzzAPIBodies sends untrusted bodies to every endpoint that parses one:
// create-QR (raw, and sealed so that the plaintext parser is reached), the
// webhook create call, simulate and the inbox. Nothing may panic or answer
// a 5xx, and every refusal must be a 4xx.
func FuzzAPIBodies(f *testing.F) {
	key, err := crypto.NewKey("encryption_key", testKeyText, crypto.EncodingUTF8)
	if err != nil {
		f.Fatal(err)
	}
	enc, _ := crypto.NewEncrypter(key)
	pol := policy.Default()
	f.Add(uint8(0), `{"Token":"a.b.c.d.e"}`)
	f.Add(uint8(1), `{"activationCode":"TEST-0000-0000-0001","currency":"PHP","amount":"500.00","merchantReferenceNumber":"ORDER-1"}`)
	f.Add(uint8(2), `{"webhookAction":"QRPH_SUCCESS","callbackUrl":"http://127.0.0.1:9/x"}`)
	f.Add(uint8(3), `{"qrBody":"`+providerExample+`","useCase":"SUCCESS"}`)
	f.Add(uint8(4), samplePayload)
	f.Fuzz(func(t *testing.T, target uint8, body string) {
		path := []string{"/v1/pay/qr", "/v1/pay/qr", "/v1/webhooks", "/v1/webhooks/qrph/simulate", "/sandbox/inbox"}[target%5]
		if target%5 == 1 {
			tok, err := enc.Encrypt([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			body = `{"Token":"` + tok + `"}`
		}
		// A fresh simulator each time: state built by one input (a webhook
		// registered to some URL) must not make another input send real
		// requests.
		store := NewStore(clock.NewFake(time.Time{}))
		defer store.Close()
		sim, err := New(Config{SecretKey: testSecret, EncryptionKey: key, Policy: pol}, store)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Webhook-Id", "evt_fuzz")
		r.SetBasicAuth(testSecret, "")
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, r)
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("%s answered %d: %s", path, w.Code, w.Body.String())
		}
	})
}
