package sandbox_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/e2e"
)

// TestDeliversToTLSInternalReceiver runs the binary with the simulator and
// an HTTPS site on `tls internal` (where the quickstart's modulus_webhook
// lives), registered through the callbacks option: the simulator trusts
// Caddy's internal CA, so the delivery succeeds on the first attempt, from
// webhook_source.
func TestDeliversToTLSInternalReceiver(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	base := fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t))
	tlsPort := e2e.FreePort(t)
	e2e.Start(t, e2e.Options{AdminAddr: admin, Caddyfile: fmt.Sprintf(`{
	admin %s
	skip_install_trust
	http_port %d
}
%s {
	bind 127.0.0.1
	modulus_sandbox {
		secret_key       %s
		encryption_key   %s
		activation_codes %s
		webhook_source   127.0.0.2
		callbacks        https://localhost:%d/webhooks/modulus
	}
}
https://localhost:%d {
	bind 127.0.0.1
	tls internal
	@fromSimulator remote_ip 127.0.0.2/32
	respond @fromSimulator "ok" 200
	respond "wrong source" 403
}
`, admin, e2e.FreePort(t), base, browserSecret, browserKey, browserMerchant, tlsPort, tlsPort)})

	// Caddy issues the internal certificate in the background after start:
	// wait for it, so that the first delivery attempt can succeed.
	e2e.WaitFor(t, 30*time.Second, "the internal certificate", func() bool {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	key, _ := crypto.NewKey("encryption_key", browserKey, crypto.EncodingUTF8)
	enc, _ := crypto.NewEncrypter(key)
	tok, _ := enc.Encrypt([]byte(`{"activationCode":"` + browserMerchant + `","currency":"PHP","amount":"500.00","merchantReferenceNumber":"TLS-1"}`))
	ring, _ := crypto.NewKeyring(0, key)
	opened, err := ring.Decrypt(call(t, http.MethodPost, base+"/v1/pay/qr", map[string]string{"Token": tok}, http.StatusOK)["Token"])
	if err != nil {
		t.Fatal(err)
	}
	var qr struct{ ID string }
	_ = json.Unmarshal(opened.Plaintext, &qr)
	if got := call(t, http.MethodPost, base+"/v1/webhooks/qrph/simulate", map[string]string{"qrBody": qr.ID, "useCase": "SUCCESS"}, http.StatusOK); got["id"] != qr.ID {
		t.Fatalf("simulate answered %v", got)
	}

	type attempt struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	var last []attempt
	var state string
	e2e.WaitFor(t, 30*time.Second, "the delivery to end", func() bool {
		resp, err := http.Get(base + "/sandbox/api/state")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			QRs []struct {
				Events []struct {
					Deliveries []struct {
						State    string    `json:"state"`
						Attempts []attempt `json:"attempts"`
					} `json:"deliveries"`
				} `json:"events"`
			} `json:"qrs"`
		}
		if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.QRs) != 1 || len(st.QRs[0].Events) != 1 {
			return false
		}
		d := st.QRs[0].Events[0].Deliveries[0]
		state, last = d.State, d.Attempts
		return len(d.Attempts) > 0
	})
	if state != "delivered" || len(last) != 1 || last[0].Status != http.StatusOK {
		t.Fatalf("delivery %s after %+v (a TLS error means the internal CA is not trusted; 403 means the wrong source address)", state, last)
	}
}
