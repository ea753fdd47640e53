package crypto

import (
	"strings"
	"testing"
)

// The Standard Webhooks specification's published example pins the scheme.
func TestWebhookSignerKnownAnswer(t *testing.T) {
	s, err := NewWebhookSigner("sign_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"test": 2432232314}`)
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	for header, ok := range map[string]bool{
		want:                  true,
		"v1,bm9wZQ== " + want: true, // rotation: any entry may match
		"v2," + want[3:]:      false,
		"v1,bm9wZQ==":         false,
		"":                    false,
		want[3:]:              false,
	} {
		if got := s.Verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, header); got != ok {
			t.Errorf("Verify(%q) = %v", header, got)
		}
	}
	if s.Verify("msg_other", "1614265330", body, want) || s.Verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265331", body, want) {
		t.Fatal("a signature verified for another id or timestamp")
	}
}

func TestNewWebhookSigner(t *testing.T) {
	for _, tc := range []struct{ secret, err string }{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
		{"TEST-ONLY-fake-signing-secret-not-real-000", ""},
		{"whsec_not base64!", "not valid base64"},
		{"whsec_c2hvcnQ=", "decodes to 5 bytes"},
		{"short-secret", "is 12 bytes"},
		{"", "is empty"},
	} {
		s, err := NewWebhookSigner("sign_secret", tc.secret)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.secret, err)
			} else if strings.Contains(s.String(), tc.secret) {
				t.Errorf("String reveals the secret")
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "sign_secret") {
			t.Errorf("%q: err %v, want the field and %q", tc.secret, err, tc.err)
		}
		if err != nil && tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("error reveals the secret: %v", err)
		}
	}
}

// During a rotation the header carries one entry per secret, in order: an
// app holding either secret alone verifies it; a third secret does not.
func TestJoinWebhookSigners(t *testing.T) {
	old, err := NewWebhookSigner("sign_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	next, err := NewWebhookSigner("sign_secret", "TEST-ONLY-fake-signing-secret-the-next-one")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewWebhookSigner("other", "TEST-ONLY-fake-signing-secret-of-nobody-00")
	both, err := JoinWebhookSigners("sign_secret", old, next)
	if err != nil || both.Keys() != 2 {
		t.Fatalf("join: %v, %d keys", err, both.Keys())
	}
	body := []byte(`{"test": 2432232314}`)
	header := both.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body)
	entries := strings.Split(header, " ")
	// The old secret's entry is the specification's published example.
	if len(entries) != 2 || entries[0] != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" ||
		entries[1] != next.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body) {
		t.Fatalf("header %q", header)
	}
	for name, s := range map[string]*WebhookSigner{"old": old, "new": next, "both": both} {
		if !s.Verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, header) {
			t.Errorf("the %s secret does not verify the rotation header", name)
		}
	}
	if other.Verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, header) {
		t.Error("a third secret verified the rotation header")
	}
	if both.Verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, other.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body)) {
		t.Error("the joined signer verified a third secret's signature")
	}
	// The same key twice is a configuration mistake, named by position.
	again, _ := NewWebhookSigner("sign_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if _, err := JoinWebhookSigners("sign_secret", old, next, again); err == nil || err.Error() != "sign_secret[3] is the same key as sign_secret[1]" {
		t.Fatalf("a repeated key: %v", err)
	}
	if _, err := JoinWebhookSigners("sign_secret"); err == nil {
		t.Fatal("joined nothing")
	}
}
