package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/preflight"
)

// testPayment is --test-payment: one QR of the amount, created through
// the configured gateway as the app would create it. It goes to the
// running gateway's modulus_api address, so that its ledger, budget and
// metrics count it; when nothing listens there (connection refused: the
// request was not sent), through preflight's own copy of the outbound
// engine with the config's credentials. More than 10.00 is refused in
// production, before any call.
func (run *pfRun) testPayment(ctx context.Context) {
	var api *pfAPI
	for _, a := range run.apis {
		if a.m != nil && a.err == nil {
			api = a
			break
		}
	}
	if api == nil {
		run.r.Add("live.test_payment", "", preflight.Failure("no modulus_api of the config provisions", "fix config.provision first"))
		return
	}
	production := api.cfg.Environment.Name == policy.Production
	amount, err := preflight.CheckTestAmount(run.o.TestPayment, production)
	if err != nil {
		run.r.Add("live.test_payment", api.subject, preflight.Failure(err.Error()+"; nothing was sent", "use --test-payment 1.00"))
		return
	}
	body, _ := json.Marshal(map[string]string{
		"amount":                  amount.String(),
		"currency":                api.cfg.Environment.Currencies[0],
		"merchantReferenceNumber": "PREFLIGHT-" + run.o.Now().UTC().Format("20060102-150405"),
	})
	base := api.site.baseURL()
	status, answer, via, err := run.createTestQR(ctx, api, base, body)
	if err != nil {
		run.r.Add("live.test_payment", api.subject, preflight.Failure("creating the test QR through "+base+": "+err.Error(),
			"check that the gateway at "+base+" is this config's"))
		return
	}
	if status != http.StatusOK {
		run.r.Add("live.test_payment", api.subject, preflight.Failure("creating the test QR: "+describeBody(status, answer), "fix what the answer names"))
		return
	}
	var qr struct {
		ID        string `json:"id"`
		QRBody    string `json:"qrBody"`
		Reference string `json:"merchantReferenceNumber"`
		Amount    string `json:"amount"`
		Currency  string `json:"currency"`
	}
	if err := json.Unmarshal(answer, &qr); err != nil || qr.ID == "" {
		run.r.Add("live.test_payment", api.subject, preflight.Failure("the answer to create-QR has no id", "see the gateway's logs"))
		return
	}
	p := &preflight.TestPayment{ID: qr.ID, Reference: qr.Reference, Amount: qr.Amount, Currency: qr.Currency, Via: via,
		StatusCommand: "curl " + base + "/v1/pay/qr/" + qr.ID}
	p.QRImage = run.writeQRImage(qr.ID, qr.QRBody)
	run.r.TestPayment = p
	run.r.Add("live.test_payment", api.subject, preflight.Pass(fmt.Sprintf(
		"created QR %s for %s %s (reference %s) through %s", qr.ID, qr.Currency, qr.Amount, qr.Reference, p.Through())))
}

// createTestQR sends the create-QR call to the running gateway at base,
// or, when nothing listens there, through preflight's own engine.
func (run *pfRun) createTestQR(ctx context.Context, api *pfAPI, base string, body []byte) (int, []byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/pay/qr", bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	switch {
	case err == nil:
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, b, "gateway", err
	case !errors.Is(err, syscall.ECONNREFUSED):
		return 0, nil, "", err
	}
	eng, closeEngine, err := api.engine()
	if err != nil {
		return 0, nil, "", err
	}
	defer closeEngine()
	rec := httptest.NewRecorder()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/pay/qr", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	eng.ServeHTTP(rec, r)
	return rec.Code, rec.Body.Bytes(), "preflight", nil
}

// writeQRImage writes the QR's PNG (qrBody, base64) for a banking app to
// scan, and returns its path ("" when qrBody is not a PNG).
func (run *pfRun) writeQRImage(id, qrBody string) string {
	png, err := base64.StdEncoding.DecodeString(qrBody)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		return ""
	}
	dir := run.o.QRDir
	if dir == "" {
		dir = os.TempDir()
	}
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, id)
	p := filepath.Join(dir, "qrphgate-test-payment-"+safe+".png")
	if err := os.WriteFile(p, png, 0o600); err != nil {
		return ""
	}
	return p
}
