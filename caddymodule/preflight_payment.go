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
	"time"

	"github.com/qrphgate/qrphgate/ledger"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/proxy/outbound"
	"github.com/qrphgate/qrphgate/store"
)

// testPayment is --test-payment: one QR of the amount, created through
// the configured gateway as the app would create it. It goes to the
// running gateway's modulus_api address, so that its ledger, budget and
// metrics count it; when nothing listens there (connection refused: the
// request was not sent), through preflight's own copy of the outbound
// engine with the config's credentials. More than 10.00 is refused in
// production, before any call; after live.credentials got a 401 or 403 the
// check is skipped, with nothing sent.
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
	if api.credentialsRejected {
		// A create-QR call would be refused as well, and each refusal
		// brings the account nearer to the provider's lock.
		run.r.Add("live.test_payment", api.subject, preflight.Skipped(
			"not attempted: the provider refused the credentials (live.credentials, 401/403), so it would refuse the test QR too, and repeated refusals lock the account",
			"fix live.credentials, then run --test-payment again"))
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
	status, answer, via, note, err := run.createTestQR(ctx, api, base, body)
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
		"created QR %s for %s %s (reference %s) through %s%s", qr.ID, qr.Currency, qr.Amount, qr.Reference, p.Through(), note)))
}

// openLedger opens the config's payments ledger for preflight's own
// engine, so that a QR it creates is in the ledger the gateway reads once
// it runs: a file or Redis ledger. A memory ledger lives in the gateway's
// process: there is none to open. note says which, for the check's reason.
func (run *pfRun) openLedger(ctx context.Context) (l outbound.Ledger, closeLedger func(), note string) {
	closeLedger = func() {}
	spec := run.cfg.ledger
	if spec == "" || checkLedgerSpec(spec) != nil {
		return nil, closeLedger, "; the ledger is in memory, in the gateway's process: it learns of this QR only from its result webhook"
	}
	var (
		st      store.Ledger
		release func() error
		err     error
	)
	if rest, ok := strings.CutPrefix(spec, "file://"); ok {
		st, err = store.OpenFileLedger(run.repl.ReplaceKnown(rest, ""), time.Second, atRest)
	} else {
		var r *store.Redis
		if r, release, err = acquireRedis(ctx, resolveRedisURL(run.repl, spec)); err == nil {
			st = store.NewRedisLedger(r)
		}
	}
	if err != nil {
		return nil, closeLedger, "; not recorded in the ledger (" + err.Error() + ")"
	}
	engine, err := ledger.New(ledger.Config{Store: st, Logger: nopLogger})
	closeLedger = func() {
		_ = st.Close()
		if release != nil {
			_ = release()
		}
	}
	if err != nil {
		return nil, closeLedger, "; not recorded in the ledger (" + err.Error() + ")"
	}
	return outboundLedger{engine}, closeLedger, "; recorded in the ledger"
}

// createTestQR sends the create-QR call to the running gateway at base,
// or, when nothing listens there, through preflight's own engine; it
// returns the answer, who sent it, and (for preflight's engine) whether
// the ledger recorded it.
func (run *pfRun) createTestQR(ctx context.Context, api *pfAPI, base string, body []byte) (status int, answer []byte, via, note string, err error) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/pay/qr", bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	switch {
	case err == nil:
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, b, "gateway", "", err
	case !errors.Is(err, syscall.ECONNREFUSED):
		return 0, nil, "", "", err
	}
	l, closeLedger, note := run.openLedger(ctx)
	defer closeLedger()
	eng, closeEngine, err := api.engineWith(l)
	if err != nil {
		return 0, nil, "", "", err
	}
	defer closeEngine()
	rec := httptest.NewRecorder()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/pay/qr", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	eng.ServeHTTP(rec, r)
	return rec.Code, rec.Body.Bytes(), "preflight", note, nil
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
