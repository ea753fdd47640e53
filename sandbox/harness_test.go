package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/clock"
)

// Obviously fake credentials, named so.
const (
	testSecret   = "sk_test_FAKE-sandbox-secret-do-not-use"
	testKeyText  = "TEST-ONLY-fake-key-do-not-use-32"
	testMerchant = "TEST-0000-0000-0001"
)

// harness is a simulator on a fake clock behind an httptest server, with a
// client that speaks the provider's protocol through crypto/, and every log
// line captured.
type harness struct {
	t     testing.TB
	clk   *clock.Fake
	store *Store
	sim   *Simulator
	srv   *httptest.Server
	key   crypto.Key
	enc   *crypto.Encrypter
	ring  *crypto.Keyring
	logs  *observer.ObservedLogs
}

func newHarness(t testing.TB, mutate func(*Config)) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{t: t, clk: clock.NewFake(time.Time{}), logs: logs}
	var err error
	if h.key, err = crypto.NewKey("encryption_key", testKeyText, crypto.EncodingUTF8); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		SecretKey: testSecret, EncryptionKey: h.key, ActivationCodes: []string{testMerchant},
		Logger: zap.New(core),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h.store = NewStore(h.clk)
	t.Cleanup(func() { _ = h.store.Close() })
	if h.sim, err = New(cfg, h.store); err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.sim)
	t.Cleanup(h.srv.Close)
	if h.enc, err = crypto.NewEncrypter(h.key); err != nil {
		t.Fatal(err)
	}
	if h.ring, err = crypto.NewKeyring(0, h.key); err != nil {
		t.Fatal(err)
	}
	return h
}

// request sends a request; auth adds the Basic credentials the provider
// expects (secret key, empty password).
func (h *harness) request(method, path, contentType, body string, auth bool) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.SetBasicAuth(testSecret, "")
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

// api sends JSON with credentials.
func (h *harness) api(method, path string, body any) (*http.Response, []byte) {
	h.t.Helper()
	var s string
	if body != nil {
		b, _ := json.Marshal(body)
		s = string(b)
	}
	return h.request(method, path, "application/json", s, true)
}

// seal encrypts a create-QR plaintext into the provider's request body.
func (h *harness) seal(plaintext string) string {
	h.t.Helper()
	tok, err := h.enc.Encrypt([]byte(plaintext))
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"Token": tok})
	return string(b)
}

// createQR creates a QR the way a client of the provider does and returns
// the decrypted answer and the PNG.
func (h *harness) createQR(amount, ref string) (createQRAnswer, []byte) {
	h.t.Helper()
	pt := `{"activationCode":"` + testMerchant + `","currency":"PHP","amount":"` + amount + `","merchantReferenceNumber":"` + ref + `"}`
	resp, body := h.request(http.MethodPost, "/v1/pay/qr", "application/json", h.seal(pt), true)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("create QR: %d %s", resp.StatusCode, body)
	}
	ans := h.openAnswer(body)
	png, err := base64.StdEncoding.DecodeString(ans.QRBody)
	if err != nil {
		h.t.Fatalf("qrBody is not base64: %v", err)
	}
	return ans, png
}

// openAnswer decrypts a {"Token"} answer.
func (h *harness) openAnswer(body []byte) createQRAnswer {
	h.t.Helper()
	var ans createQRAnswer
	openStrict(h, body, "Token", &ans)
	if ans.ID == "" || ans.QRBody == "" {
		h.t.Fatalf("answer %+v lacks id or qrBody", ans)
	}
	return ans
}

// openStrict checks that body is {member: JWE} and nothing else, decrypts
// it and decodes the plaintext into v, refusing unknown fields.
func openStrict(h *harness, body []byte, member string, v any) {
	h.t.Helper()
	var env map[string]string
	if err := json.Unmarshal(body, &env); err != nil || len(env) != 1 || env[member] == "" {
		h.t.Fatalf("body is not {%q: JWE}: %s", member, body)
	}
	opened, err := h.ring.Decrypt(env[member])
	if err != nil {
		h.t.Fatalf("%s token: %v", member, err)
	}
	dec := json.NewDecoder(bytes.NewReader(opened.Plaintext))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.t.Fatalf("plaintext %s: %v", opened.Plaintext, err)
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// providerError checks that an answer is the provider's error object with
// the given status and code, and returns it.
func providerError(t *testing.T, resp *http.Response, body []byte, status int, code string) ProviderError {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var pe ProviderError
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pe); err != nil {
		t.Fatalf("not a provider error object: %v: %s", err, body)
	}
	if pe.Code != code || pe.Error == "" || !uuidPattern.MatchString(pe.ReferenceNumber) {
		t.Fatalf("error object %+v, want code %s", pe, code)
	}
	return pe
}

// waitFor polls cond (real time) while goroutines work.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newKeyForTest returns an encrypter for a 32-character UTF-8 key.
func newKeyForTest(text string) (*crypto.Encrypter, crypto.Key) {
	k, err := crypto.NewKey("test", text, crypto.EncodingUTF8)
	if err != nil {
		panic(err)
	}
	e, err := crypto.NewEncrypter(k)
	if err != nil {
		panic(err)
	}
	return e, k
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
