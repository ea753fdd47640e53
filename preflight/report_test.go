package preflight

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/crypto"
)

func TestReportCountsAndPasses(t *testing.T) {
	r := NewReport("Caddyfile", "caddyfile", false)
	r.Add("a.one", "", Pass("fine"))
	r.Add("a.two", "subject", Warning("meh", "do this"))
	if !r.Passed || r.Summary != (Summary{OK: 1, Warn: 1}) {
		t.Fatalf("after ok and warn: %+v passed=%v", r.Summary, r.Passed)
	}
	r.Add("a.three", "", Failure("broken", "fix that").Timed(1500*time.Microsecond))
	if r.Passed || r.Summary != (Summary{OK: 1, Warn: 1, Fail: 1}) {
		t.Fatalf("after a fail: %+v passed=%v", r.Summary, r.Passed)
	}
	if c := r.Find("a.three"); len(c) != 1 || c[0].ElapsedMS == nil || *c[0].ElapsedMS != 1.5 {
		t.Fatalf("timed check: %+v", c)
	}
	// An ok check carries no fix, whatever its verdict said.
	r.Add("a.four", "", Verdict{Status: OK, Reason: "fine", Fix: "nothing"})
	if c := r.Find("a.four")[0]; c.Fix != "" {
		t.Fatalf("ok check with a fix: %+v", c)
	}
}

// A skipped check fails nothing, keeps its reason and fix, and is counted
// (and written) as skipped.
func TestReportSkip(t *testing.T) {
	r := NewReport("Caddyfile", "caddyfile", true)
	r.Add("live.test_payment", "modulus_api http://127.0.0.1:2090", Skipped("not attempted: the credentials failed", "fix live.credentials"))
	if !r.Passed || r.Summary != (Summary{Skip: 1}) {
		t.Fatalf("after a skip: %+v passed=%v", r.Summary, r.Passed)
	}
	if c := r.Find("live.test_payment")[0]; c.Status != Skip || c.Fix != "fix live.credentials" {
		t.Fatalf("skipped check %+v", c)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"skip  live.test_payment  [modulus_api http://127.0.0.1:2090] not attempted: the credentials failed -- fix: fix live.credentials\n",
		"1 checks: 0 ok, 0 warn, 0 fail, 1 skipped. Nothing fails.\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	_ = r.WriteJSON(&b)
	if !strings.Contains(b.String(), `"status": "skip"`) || !strings.Contains(b.String(), `"skip": 1`) {
		t.Fatalf("JSON: %s", b.String())
	}
}

func TestWorst(t *testing.T) {
	if v := Worst("all good"); v.Status != OK || v.Reason != "all good" {
		t.Fatalf("no verdicts: %+v", v)
	}
	v := Worst("unused", Pass("a"), Warning("b", "fix b"), Failure("c", "fix c"), Pass("d").Timed(time.Second))
	if v.Status != Fail || v.Reason != "a; b; c; d" || v.Fix != "fix b; fix c" || v.Elapsed != time.Second {
		t.Fatalf("combined: %+v", v)
	}
}

func TestWriteTextOneLinePerCheck(t *testing.T) {
	r := NewReport("Caddyfile", "caddyfile", true)
	r.Add("config.adapt", "", Pass("the config adapts"))
	r.Add("webhook.allow_ips", "modulus_webhook https://pay.example.com/webhooks/modulus", Failure("allow_ips is any", "set the list"))
	r.TestPayment = &TestPayment{ID: "qr-1", Reference: "PREFLIGHT-1", Amount: "1.00", Currency: "PHP", Via: "gateway",
		StatusCommand: "curl http://127.0.0.1:2090/v1/pay/qr/qr-1", QRImage: "/tmp/qr.png"}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"qrphgate preflight of Caddyfile (caddyfile): offline and live checks\n",
		"ok    config.adapt       the config adapts\n",
		"fail  webhook.allow_ips  [modulus_webhook https://pay.example.com/webhooks/modulus] allow_ips is any -- fix: set the list\n",
		"test payment: QR qr-1 for PHP 1.00 (reference PREFLIGHT-1), created through the running gateway.\n",
		"  scan it with a banking app: /tmp/qr.png\n",
		"  watch its status: curl http://127.0.0.1:2090/v1/pay/qr/qr-1\n",
		"2 checks: 1 ok, 0 warn, 1 fail. NOT READY: fix the fail lines.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSONShape(t *testing.T) {
	r := NewReport("c.json", "json", false)
	r.Add("system.clock", "", Warning("unknown", "run NTP"))
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["schema"] != Schema || got["passed"] != true || got["live"] != false {
		t.Fatalf("report: %s", b.String())
	}
	checks := got["checks"].([]any)
	c := checks[0].(map[string]any)
	if c["id"] != "system.clock" || c["status"] != "warn" || c["fix"] != "run NTP" || c["subject"] != nil || c["elapsed_ms"] != nil {
		t.Fatalf("check: %v", c)
	}
	if _, ok := got["test_payment"]; ok {
		t.Fatal("test_payment present without a test payment")
	}
	// An empty report still has an (empty) list of checks, not null.
	var e bytes.Buffer
	_ = NewReport("x", "json", false).WriteJSON(&e)
	if !strings.Contains(e.String(), `"checks": []`) {
		t.Fatalf("empty report: %s", e.String())
	}
}

func TestScrub(t *testing.T) {
	const secret = "sk_test_FAKE-secret-for-scrubbing"
	r := NewReport("c", "caddyfile", true)
	r.Add("x", "subject "+secret, Failure("reason "+secret, "fix "+secret))
	r.TestPayment = &TestPayment{StatusCommand: "curl " + secret}
	r.Scrub(crypto.NewScrubber(secret))
	var b bytes.Buffer
	_ = r.WriteJSON(&b)
	if strings.Contains(b.String(), secret) || !strings.Contains(b.String(), crypto.Redacted) {
		t.Fatalf("scrubbed report: %s", b.String())
	}
}
