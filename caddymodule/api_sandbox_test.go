package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// modulus_api against modulus_sandbox in one binary: the gateway and the
// simulator agree on the protocol (Basic auth, JWE both ways, error objects).
func TestAPIAgainstSandboxSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Setenv("QG_SIM_SECRET", fakeSandboxKey)
	t.Setenv("QG_SIM_ENC", fakeEncryptionKey)
	t.Setenv("QG_SIM_ACT", fakeActivation)
	admin := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	api, sim := e2e.FreePort(t), e2e.FreePort(t)
	e2e.Start(t, e2e.Options{AdminAddr: admin, Caddyfile: fmt.Sprintf(`{
	admin %s
}
http://127.0.0.1:%d {
	modulus_api {
		environment     sandbox
		secret_key      {env.QG_SIM_SECRET}
		encryption_key  {env.QG_SIM_ENC}
		activation_code {env.QG_SIM_ACT}
		qr_url          http://127.0.0.1:%d
		webhooks_url    http://127.0.0.1:%d
	}
}
http://127.0.0.1:%d {
	modulus_sandbox {
		secret_key       {env.QG_SIM_SECRET}
		encryption_key   {env.QG_SIM_ENC}
		activation_codes %s
	}
}
`, admin, api, sim, sim, sim, fakeActivation)})
	base := fmt.Sprintf("http://127.0.0.1:%d", api)
	post := func(path, body string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := post("/v1/pay/qr", `{"amount":"98.00","currency":"PHP","merchantReferenceNumber":"SIM-1"}`)
	var qr outbound.CreateQRResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &qr) != nil || qr.ID == "" || qr.QRBody == "" {
		t.Fatalf("create through the simulator: %d %s", resp.StatusCode, body)
	}
	resp, body = post("/v1/pay/qr", `{"amount":"98.00","currency":"PHP","merchantReferenceNumber":"SIM-2"}`, "Accept: image/png")
	if resp.StatusCode != 200 {
		t.Fatalf("png: %d %s", resp.StatusCode, body)
	}
	if img, err := png.Decode(bytes.NewReader(body)); err != nil || img.Bounds().Dx() < 21 {
		t.Fatalf("the simulator's QR is not a usable PNG: %v", err)
	}
	if resp, body := post("/v1/webhooks", `{"callbackUrl":"https://pay.example.com/hook","webhookAction":"QRPH_SUCCESS"}`); resp.StatusCode != 201 {
		t.Fatalf("webhook create: %d %s", resp.StatusCode, body)
	}
	// A provider-side rejection keeps the simulator's error object.
	resp, body = post("/v1/webhooks/qrph/simulate", `{"qrBody":"000201010212","useCase":"SUCCESS"}`)
	if resp.StatusCode/100 != 4 || !strings.Contains(string(body), `"upstream":{"status":`) {
		t.Fatalf("simulate with an unknown QR: %d %s", resp.StatusCode, body)
	}
	ping, err := http.Get(base + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(ping.Body)
	ping.Body.Close()
	if ping.StatusCode != 200 || !strings.Contains(string(pb), "Pong!") {
		t.Fatalf("ping: %d %q", ping.StatusCode, pb)
	}
}
