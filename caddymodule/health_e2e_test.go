package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/proxy/health"
)

// TestHealthCertificatesOfTLSSitesOnly runs the binary with a
// modulus_webhook on a plain-HTTP site (TLS ended by a proxy in front) and
// one on an HTTPS site: readiness checks the HTTPS site's certificate
// (tls internal: present, valid for its 12 hours, so cert_warn 1h) and none
// for the plain one, which serves
// no certificate of its own; the answer is 200.
func TestHealthCertificatesOfTLSSitesOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	admin, httpPort, httpsPort, plain, ops, appPort := e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t)
	site := func(addr string, extra string) string {
		return fmt.Sprintf(`%s {
	%s
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.1/32
			forward_to     http://127.0.0.1:%d/payments
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          spool/webhooks.spool
		}
	}
}
`, addr, extra, appPort)
	}
	g := e2e.Start(t, e2e.Options{AdminAddr: fmt.Sprintf("127.0.0.1:%d", admin), Env: gatewayEnv(), Caddyfile: fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	https_port %d
	skip_install_trust
	auto_https disable_redirects
}
`, admin, httpPort, httpsPort) +
		site(fmt.Sprintf("https://secure.example.test:%d", httpsPort), "tls internal") +
		site(fmt.Sprintf("http://plain.example.test:%d", plain), "") +
		fmt.Sprintf("http://127.0.0.1:%d {\n\tmodulus_health {\n\t\tcert_warn 1h\n\t}\n}\n", ops)})
	var rep health.Report
	code := 0
	e2e.WaitFor(t, 30*time.Second, "the secure site's certificate and the spool checked", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ops))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		rep = health.Report{}
		code = resp.StatusCode
		return json.NewDecoder(resp.Body).Decode(&rep) == nil && rep.Checks["certificate:secure.example.test"].Status == health.OK &&
			rep.Status == health.OK
	})
	if _, checked := rep.Checks["certificate:plain.example.test"]; checked || code != http.StatusOK {
		t.Fatalf("%d %+v:\n%s", code, rep, g.Logs())
	}
}
