package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/qrphgate/qrphgate/internal/quickstart"
	"github.com/qrphgate/qrphgate/internal/testenv"
)

// Obviously fake credentials, named so (e2e_test.go uses them).
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

// TestBrowserPayLoop runs the quickstart (examples/quickstart/Caddyfile,
// the README's main command) in the real binary and drives the sandbox page
// in headless Chromium: a QR created through modulus_api shows with its
// image and the payments ledger's status, Pay fires the simulator's
// webhook, modulus_webhook decrypts it and delivers it, signed, to the demo
// inbox, and the page shows the entry with its verified signature and the
// ledger's paid.
func TestBrowserPayLoop(t *testing.T) {
	browser := findChromium(t)
	qs := quickstart.Start(t)

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
	step("open /sandbox/", chromedp.Navigate(qs.Sandbox+"/sandbox/"))
	step("see the empty page", chromedp.WaitVisible(chromedp.CSS("#no-qrs")))

	// The app creates a QR through the sidecar, as in the README.
	resp, err := http.Post(qs.API+"/v1/pay/qr", "application/json",
		strings.NewReader(`{"amount":"250.00","currency":"PHP","merchantReferenceNumber":"BROWSER-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var qr struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&qr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || qr.ID == "" {
		t.Fatalf("create through modulus_api: %d %v", resp.StatusCode, err)
	}

	card := fmt.Sprintf(`article.qr[data-id=%q]`, qr.ID)
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

	// Beside the simulator's status, the gateway's payments ledger's.
	step("see the ledger's pending", chromedp.WaitVisible(chromedp.CSS(card+` .ledger [data-ledger-status="pending"]`)))

	step("click Pay", chromedp.Click(chromedp.CSS(card+" button.pay"), chromedp.NodeVisible))
	entry := `#inbox li.entry[data-reference="BROWSER-1"][data-action="QRPH_SUCCESS"]`
	step("see the inbox entry", chromedp.WaitVisible(chromedp.CSS(entry)))
	step("see the QR paid", chromedp.WaitVisible(chromedp.CSS(card+" .status.PAID")))
	step("see the ledger's paid", chromedp.WaitVisible(chromedp.CSS(card+` .ledger [data-ledger-status="paid"]`)))
	text, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(entry)))
	for _, want := range []string{qr.ID, "PHP 250.00", "Webhook-Id evt_", "signature verified"} {
		if !strings.Contains(text, want) {
			shot()
			t.Fatalf("inbox entry lacks %q: %q", want, text)
		}
	}

	// The same entry through the JSON the page polls.
	resp, err = http.Get(qs.Sandbox + "/sandbox/inbox")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var inbox struct {
		Entries []struct {
			WebhookID string         `json:"webhookId"`
			Signature string         `json:"signature"`
			Body      map[string]any `json:"body"`
		} `json:"entries"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&inbox)
	if len(inbox.Entries) != 1 || inbox.Entries[0].Body["transactionId"] != qr.ID || inbox.Entries[0].Body["amount"] != float64(25000) ||
		inbox.Entries[0].Signature != "verified" || !strings.HasPrefix(inbox.Entries[0].WebhookID, "evt_") {
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
