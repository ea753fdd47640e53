package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/testenv"
)

// Obviously fake credentials, named so.
const (
	browserSecret   = "sk_test_FAKE-browser-secret-do-not-use"
	browserKey      = "TEST-ONLY-fake-key-do-not-use-32"
	browserMerchant = "TEST-0000-0000-0001"
)

// findChromium returns the browser CI installs (Debian's chromium).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "no Chromium found (Debian: apt-get install chromium)")
	return ""
}

// TestBrowserPayLoop runs the real qrphgate binary with a Caddyfile holding
// only modulus_sandbox, and drives the page in headless Chromium: the QR
// created through the API shows with its image, Pay fires the webhook, and
// the inbox shows the delivery.
//
// Until modulus_webhook joins the sandbox in the quickstart, a stand-in in
// this test plays its part: it receives {"data": JWE}, decrypts it with
// crypto/ and forwards the plaintext to /sandbox/inbox in the gateway's
// delivery format.
func TestBrowserPayLoop(t *testing.T) {
	browser := findChromium(t)
	admin := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	base := fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t))
	e2e.Start(t, e2e.Options{AdminAddr: admin, Caddyfile: fmt.Sprintf(`{
	admin %s
}
%s {
	bind 127.0.0.1
	modulus_sandbox {
		secret_key       %s
		encryption_key   %s
		activation_codes %s
		retry_intervals  1s
	}
}
`, admin, base, browserSecret, browserKey, browserMerchant)})

	key, err := crypto.NewKey("encryption_key", browserKey, crypto.EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := crypto.NewKeyring(0, key)
	gateway := httptest.NewServer(standInGateway(t, ring, base+"/sandbox/inbox"))
	defer gateway.Close()

	call(t, http.MethodPost, base+"/v1/webhooks", map[string]string{"webhookAction": "QRPH_SUCCESS", "callbackUrl": gateway.URL + "/webhooks/modulus"}, http.StatusCreated)
	enc, _ := crypto.NewEncrypter(key)
	tok, _ := enc.Encrypt([]byte(`{"activationCode":"` + browserMerchant + `","currency":"PHP","amount":"250.00","merchantReferenceNumber":"BROWSER-1"}`))
	ans := call(t, http.MethodPost, base+"/v1/pay/qr", map[string]string{"Token": tok}, http.StatusOK)
	opened, err := ring.Decrypt(ans["Token"])
	if err != nil {
		t.Fatal(err)
	}
	var qr struct{ ID, QRBody string }
	_ = json.Unmarshal(opened.Plaintext, &qr)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	card := fmt.Sprintf(`article.qr[data-id=%q]`, qr.ID)
	shot := func() {
		if b, err := chromedp.Run(bctx, chromedp.FullScreenshot(80)); err == nil {
			p := filepath.Join(t.TempDir(), "sandbox.jpg")
			if os.WriteFile(p, b, 0o600) == nil {
				t.Logf("screenshot of the page: %s", p)
			}
		}
	}
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, a); err != nil {
			shot()
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("open /sandbox/", chromedp.Navigate(base+"/sandbox/"))
	step("see the QR", chromedp.WaitVisible(chromedp.CSS(card+" img.qr-image")))
	loaded, err := chromedp.Run(bctx, chromedp.Poll[bool](
		fmt.Sprintf(`(() => { const i = document.querySelector('%s img.qr-image'); return i.complete && i.naturalWidth > 0 })()`, card),
		chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil || !loaded {
		shot()
		t.Fatalf("the QR image did not load: %v", err)
	}
	amount, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(card+" .amount")))
	status, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(card+" .status")))
	if amount != "PHP 250.00" || status != "PENDING" {
		shot()
		t.Fatalf("card shows %q, %q", amount, status)
	}

	step("click Pay", chromedp.Click(chromedp.CSS(card+" button.pay"), chromedp.NodeVisible))
	entry := `#inbox li.entry[data-reference="BROWSER-1"][data-action="QRPH_SUCCESS"]`
	step("see the inbox entry", chromedp.WaitVisible(chromedp.CSS(entry)))
	step("see the QR paid", chromedp.WaitVisible(chromedp.CSS(card+" .status.PAID")))
	text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(entry)))
	if !bytes.Contains([]byte(text), []byte(qr.ID)) || !bytes.Contains([]byte(text), []byte("PHP 250.00")) {
		shot()
		t.Fatalf("inbox entry reads %q", text)
	}

	// The same entry through the JSON the page polls.
	resp, err := http.Get(base + "/sandbox/inbox")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var inbox struct {
		Entries []struct {
			Body map[string]any `json:"body"`
		} `json:"entries"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&inbox)
	if len(inbox.Entries) != 1 || inbox.Entries[0].Body["transactionId"] != qr.ID || inbox.Entries[0].Body["amount"] != float64(25000) {
		t.Fatalf("inbox JSON %+v", inbox)
	}
}

// call sends a JSON request with the sandbox's Basic credentials.
func call(t *testing.T, method, url string, body any, want int) map[string]string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(browserSecret, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, out)
	}
	var m map[string]string
	_ = json.Unmarshal(out, &m)
	return m
}

// standInGateway plays modulus_webhook for this test: decrypt the
// provider's {"data": JWE} and deliver the plaintext to the app (the demo
// inbox) with the gateway's headers.
func standInGateway(t *testing.T, ring *crypto.Keyring, inbox string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Data string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&env); err != nil || env.Data == "" {
			http.Error(w, "want {\"data\": JWE}", http.StatusBadRequest)
			return
		}
		opened, err := ring.Decrypt(env.Data)
		if err != nil {
			http.Error(w, "cannot decrypt", http.StatusBadRequest)
			return
		}
		var p struct{ Action, TransactionID string }
		_ = json.Unmarshal(opened.Plaintext, &p)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, inbox, bytes.NewReader(opened.Plaintext))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Webhook-Id", "evt_"+p.TransactionID+"_"+p.Action)
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
		req.Header.Set("Webhook-Attempt", "1")
		if code := r.Header.Get("activation-code"); code != "" {
			req.Header.Set("Modulus-Activation-Code", code)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Logf("stand-in gateway: %v", err)
			http.Error(w, "app unreachable", http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			http.Error(w, "app refused", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"received":true}`))
	})
}
