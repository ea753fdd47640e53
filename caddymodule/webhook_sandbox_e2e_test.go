package caddymodule

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/e2e"
)

// TestWebhookFromTheSimulator runs the whole inbound loop in one binary:
// modulus_sandbox creates a QR and, on simulate, posts the encrypted
// webhook from 127.0.0.2 to modulus_webhook over TLS (tls internal), which
// admits only that address, decrypts, spools and delivers the JSON, signed,
// to the simulator's demo inbox, which verifies the signature.
func TestWebhookFromTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const (
		secret   = "sk_test_FAKE-webhook-loop-do-not-use"
		merchant = "TEST-0000-0000-0001"
	)
	admin := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	sbx := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	tlsPort := e2e.FreePort(t)
	e2e.Start(t, e2e.Options{AdminAddr: admin, Env: gatewayEnv(), Caddyfile: fmt.Sprintf(`{
	admin %s
	skip_install_trust
	http_port %d
}
http://%s {
	bind 127.0.0.1
	modulus_sandbox {
		secret_key        %s
		encryption_key    {env.QRPHGATE_E2E_KEY_1}
		activation_codes  %s
		webhook_source    127.0.0.2
		inbox_sign_secret {env.QRPHGATE_E2E_SIGN}
		callbacks         https://localhost:%d/webhooks/modulus
	}
}
https://localhost:%d {
	bind 127.0.0.1
	tls internal
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.2/32
			forward_to     http://%s/sandbox/inbox
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          spool/loop.spool
		}
	}
}
`, admin, e2e.FreePort(t), sbx, secret, merchant, tlsPort, tlsPort, sbx)})
	e2e.WaitFor(t, 30*time.Second, "the internal certificate", func() bool {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	call := func(path string, body any) map[string]string {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, "http://"+sbx+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(secret, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
		}
		var m map[string]string
		_ = json.Unmarshal(out, &m)
		return m
	}
	key, _ := crypto.NewKey("k", testWebhookKey, crypto.EncodingUTF8)
	enc, _ := crypto.NewEncrypter(key)
	ring, _ := crypto.NewKeyring(0, key)
	tok, _ := enc.Encrypt([]byte(`{"activationCode":"` + merchant + `","currency":"PHP","amount":"500.00","merchantReferenceNumber":"LOOP-1"}`))
	opened, err := ring.Decrypt(call("/v1/pay/qr", map[string]string{"Token": tok})["Token"])
	if err != nil {
		t.Fatal(err)
	}
	var qr struct{ ID string }
	_ = json.Unmarshal(opened.Plaintext, &qr)
	call("/v1/webhooks/qrph/simulate", map[string]string{"qrBody": qr.ID, "useCase": "SUCCESS"})

	type entry struct {
		WebhookID, Signature, Attempt string
		Accepted                      bool
		Body                          json.RawMessage
	}
	var got []entry
	e2e.WaitFor(t, 60*time.Second, "the delivery in the demo inbox", func() bool {
		resp, err := http.Get("http://" + sbx + "/sandbox/inbox")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var in struct {
			Entries []struct {
				WebhookID string          `json:"webhookId"`
				Signature string          `json:"signature"`
				Attempt   string          `json:"webhookAttempt"`
				Accepted  bool            `json:"accepted"`
				Body      json.RawMessage `json:"body"`
			} `json:"entries"`
		}
		if json.NewDecoder(resp.Body).Decode(&in) != nil {
			return false
		}
		got = got[:0]
		for _, e := range in.Entries {
			got = append(got, entry{e.WebhookID, e.Signature, e.Attempt, e.Accepted, e.Body})
		}
		return len(got) > 0
	})
	e := got[0]
	if len(got) != 1 || !e.Accepted || e.Signature != "verified" || !strings.HasPrefix(e.WebhookID, "evt_") || e.Attempt != "1" {
		t.Fatalf("inbox: %+v", got)
	}
	if !strings.Contains(string(e.Body), `"referenceNumber":"LOOP-1"`) || !strings.Contains(string(e.Body), `"action":"QRPH_SUCCESS"`) {
		t.Fatalf("delivered body %s", e.Body)
	}
}
