package crypto

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestKeyNeverPrints(t *testing.T) {
	k, err := NewKey("encryption_key", testKeyUTF8, EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	holder := struct {
		K    Key
		Keys []Key
	}{k, []Key{k}}
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v", holder, holder, holder),
	}
	js, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	for _, out := range outs {
		assertNoSecret(t, out, testKeyUTF8)
		if !strings.Contains(out, "encryption_key") {
			t.Fatalf("output lost the key's name: %s", out)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const v = "sk_test_FAKEsecretvalue0123456789"
	s := Secret(v)
	holder := map[string]any{"secret": s, "nested": struct{ S Secret }{s}}
	js, _ := json.Marshal(holder)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", holder, holder, holder),
		string(js),
	} {
		assertNoSecret(t, out, v)
		if !strings.Contains(out, Redacted) {
			t.Fatalf("output should say %s: %s", Redacted, out)
		}
	}
	if s.Reveal() != v {
		t.Fatal("Reveal must return the value")
	}
	if Secret("").String() != "" {
		t.Fatal("an empty secret should print as empty, to show it is unset")
	}
}

func TestRedactHelpers(t *testing.T) {
	tok := "eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.a.b.c.d"
	if got := RedactToken(tok); strings.Contains(got, "eyJ") || !strings.Contains(got, "5 segments") {
		t.Fatalf("RedactToken = %q", got)
	}
}

func TestScrubber(t *testing.T) {
	const key = "sk_test_FAKEsecretvalue0123456789"
	basic := base64.StdEncoding.EncodeToString([]byte(key + ":"))
	sc := NewScrubber(key, "", "short")
	in := fmt.Sprintf("upstream said: key %s rejected; header Basic %s; b64 %s; word short stays",
		key, basic, base64.StdEncoding.EncodeToString([]byte(key)))
	out := sc.Scrub(in)
	assertNoSecret(t, out, key)
	assertNoSecret(t, out, basic)
	if !strings.Contains(out, "word short stays") {
		t.Fatalf("short secrets must not be scrubbed (they mangle text): %s", out)
	}
	var nilScrubber *Scrubber
	if nilScrubber.Scrub("x") != "x" {
		t.Fatal("a nil Scrubber must pass text through")
	}
}

func assertNoSecret(t *testing.T, out, secret string) {
	t.Helper()
	if strings.Contains(out, secret) {
		t.Fatalf("output reveals a secret: %s", out)
	}
	if strings.Contains(out, fmt.Sprintf("%x", secret)) {
		t.Fatalf("output reveals a secret in hex: %s", out)
	}
}

// The provider's documentation works its own example through: the key as
// user name, an empty password, the trailing colon kept.
func TestBasicAuthorizationMatchesTheDocs(t *testing.T) {
	const docsKey = "sk_eaNv7t5xyCuiBfGCq2q7wu9uHEH3mTQ1Mq0c53XO1c53vfG" // the docs' example, not a real key
	if got, want := BasicAuthorization(docsKey), "Basic c2tfZWFOdjd0NXh5Q3VpQmZHQ3EycTd3dTl1SEVIM21UUTFNcTBjNTNYTzFjNTN2Zkc6"; got != want {
		t.Fatalf("BasicAuthorization = %q, want %q", got, want)
	}
}
