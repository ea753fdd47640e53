package inbound

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/apispec"
	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/nodewebhooks"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// Obviously fake signing secrets: the one being retired (the Standard
// Webhooks whsec_ form), the one replacing it (a plain string, the other
// form sign_secret takes) and one nobody configured.
var (
	rotationOld   = "whsec_" + base64.StdEncoding.EncodeToString([]byte("TEST-ONLY-old-signing-key-0000"))
	rotationNew   = "TEST-ONLY-fake-signing-secret-the-new-one-0000"
	rotationOther = "whsec_" + base64.StdEncoding.EncodeToString([]byte("TEST-ONLY-nobody-s-signing-key"))
)

// During a rotation (two secrets), every delivery carries one v1 entry per
// secret, and the official Standard Webhooks libraries, Go's and Node's,
// verify it with the old secret alone and with the new one alone, and
// refuse it with a third. The delivery also matches proxy/openapi.json's
// webhooks.paymentEvent (headers and body).
func TestDeliverySignedWithEverySecret(t *testing.T) {
	// The libraries check Webhook-Timestamp against the real time.
	c := clock.NewFake(time.Now())
	app := newAppStandIn(t, c, nil)
	var signers []*crypto.WebhookSigner
	for _, s := range []string{rotationOld, rotationNew} {
		signer, err := crypto.NewWebhookSigner("sign_secret", s)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, signer)
	}
	both, err := crypto.JoinWebhookSigners("sign_secret", signers...)
	if err != nil {
		t.Fatal(err)
	}
	spool := storetest.NewMemorySpool()
	ev := spoolEvent(NewEventID(c.Now()), c.Now(), `{"action":"QRPH_SUCCESS","transactionId":"a78efd32-de3b-4854-b599-11ae9f98f97e","referenceNumber":"ORDER-1","amount":50000,"currency":"PHP"}`)
	ev.ActivationCode = "MERCHANT_ABC_123"
	_ = spool.Put(context.Background(), ev)
	f := startDeliverer(t, spool, c, DeliveryConfig{URL: app.url(), Signer: both}, 1)
	d := app.next(t)

	if entries := strings.Split(d.header.Get("Webhook-Signature"), " "); len(entries) != 2 ||
		!strings.HasPrefix(entries[0], "v1,") || !strings.HasPrefix(entries[1], "v1,") || entries[0] == entries[1] {
		t.Fatalf("Webhook-Signature %q: want one v1 entry per secret", d.header.Get("Webhook-Signature"))
	}
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{{"old", rotationOld, true}, {"new", rotationNew, true}, {"unconfigured", rotationOther, false}} {
		var wh *standardwebhooks.Webhook
		if strings.HasPrefix(tc.secret, "whsec_") {
			wh, err = standardwebhooks.NewWebhook(tc.secret)
		} else {
			wh, err = standardwebhooks.NewWebhookRaw([]byte(tc.secret))
		}
		if err != nil {
			t.Fatal(err)
		}
		err := wh.Verify([]byte(d.body), d.header)
		if tc.ok && err != nil {
			t.Errorf("Go standardwebhooks with the %s secret: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
			t.Errorf("Go standardwebhooks with the %s secret: %v, want no matching signature", tc.name, err)
		}
		res := nodewebhooks.Verify(t, filepath.Join("..", "..", "examples", "apps", "node"), tc.secret,
			[]nodewebhooks.Delivery{{Header: d.header, Body: []byte(d.body)}})
		if res[0].Verified != tc.ok {
			t.Errorf("Node standardwebhooks with the %s secret: verified %v (%s), want %v", tc.name, res[0].Verified, res[0].Error, tc.ok)
		}
	}

	spec := apispec.Load(t)
	req := httptest.NewRequest("POST", "/payments/modulus", strings.NewReader(d.body))
	req.Header = d.header.Clone()
	if err := spec.CheckDelivery(req, []byte(d.body)); err != nil {
		t.Errorf("the delivery does not match proxy/openapi.json: %v", err)
	}
	eventually(t, "the event to be completed", func() bool { return pendingCount(t, spool) == 0 })
	if st, err := f.d.Status(context.Background()); err != nil || !st.Signed || st.SigningSecrets != 2 {
		t.Fatalf("status %+v %v: want signed with 2 secrets", st, err)
	}
}

// The delivery's documented answers are what the Deliverer acts on: 2xx,
// 410, 429 and 503 (with Retry-After), anything else.
func TestDeliveryAnswersDocumented(t *testing.T) {
	got := strings.Join(apispec.Load(t).DeliveryAnswers(), " ")
	if got != "2XX 410 429 503 default" {
		t.Fatalf("proxy/openapi.json documents the app's answers %q", got)
	}
}
