package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/internal/nodejose"
)

// nodeDir holds the provider's documented Node library (panva/jose) and the
// helper scripts the crypto package's interop tests use.
var nodeDir = filepath.Join("..", "crypto", "testdata", "node")

type vector struct {
	Name        string          `json:"name"`
	Key         string          `json:"key"`
	KeyEncoding crypto.Encoding `json:"key_encoding"`
	Plaintext   string          `json:"plaintext"`
	Token       string          `json:"token"`
	Expect      string          `json:"expect"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "crypto", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &vf); err != nil || len(vf.Vectors) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	return vf.Vectors
}

// TestSimulatorOpensNodeJoseRequests posts tokens made by panva/jose (the
// library the provider documents) to the simulator, each with the key the
// vector names.
func TestSimulatorOpensNodeJoseRequests(t *testing.T) {
	created := 0
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			key, err := crypto.NewKey("encryption_key", v.Key, v.KeyEncoding)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, func(c *Config) { c.EncryptionKey = key; c.ActivationCodes = nil })
			body, _ := json.Marshal(map[string]string{"Token": v.Token})
			resp, out := h.request(http.MethodPost, "/v1/pay/qr", "application/json", string(body), true)
			isCreate := strings.Contains(v.Plaintext, `"merchantReferenceNumber"`)
			switch {
			case v.Expect == "ok" && isCreate:
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, out)
				}
				h.openAnswer(out)
				created++
			case v.Expect == "ok":
				// Opened, then refused for what it says (a webhook payload
				// is no create request): decryption worked.
				providerError(t, resp, out, http.StatusBadRequest, CodeValidation)
			default:
				want := map[string]string{"wrong_key": "wrong key", "wrong_alg": "key algorithm not allowed", "wrong_enc": "content encryption not allowed"}[v.Expect]
				if pe := providerError(t, resp, out, http.StatusBadRequest, CodeTokenUndecryptable); want == "" || !strings.Contains(pe.Error, want) {
					t.Fatalf("message %q, want %q", pe.Error, want)
				}
			}
		})
	}
	if created == 0 {
		t.Fatal("no vector is a create request")
	}
}

// TestNodeJoseOpensSimulatorTokens has panva/jose decrypt the simulator's
// answer tokens and webhook payloads.
func TestNodeJoseOpensSimulatorTokens(t *testing.T) {
	nodejose.Require(t, nodeDir)
	h := newHarness(t, nil)
	cb := newCallback(t)
	h.register("QRPH_SUCCESS", cb.srv.URL, "")

	var tokens, plaintexts []string
	for i, amount := range []string{"1.00", "99999.99"} {
		pt := fmt.Sprintf(`{"activationCode":%q,"currency":"PHP","amount":%q,"merchantReferenceNumber":"NODE-%d"}`, testMerchant, amount, i)
		resp, body := h.request(http.MethodPost, "/v1/pay/qr", "application/json", h.seal(pt), true)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		var env map[string]string
		_ = json.Unmarshal(body, &env)
		opened, err := h.ring.Decrypt(env["Token"])
		if err != nil {
			t.Fatal(err)
		}
		tokens, plaintexts = append(tokens, env["Token"]), append(plaintexts, string(opened.Plaintext))
	}
	var qr createQRAnswer
	_ = json.Unmarshal([]byte(plaintexts[0]), &qr)
	h.simulate(qr.ID, "SUCCESS")
	waitFor(t, "the webhook", func() bool { return cb.count() == 1 })
	var env map[string]string
	_ = json.Unmarshal(cb.request(0).body, &env)
	opened, err := h.ring.Decrypt(env["data"])
	if err != nil {
		t.Fatal(err)
	}
	tokens, plaintexts = append(tokens, env["data"]), append(plaintexts, string(opened.Plaintext))

	raw, err := crypto.DecodeKey(testKeyText, crypto.EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(tokens[0])
	tampered[len(tampered)-2] ^= 1
	res := nodejose.Decrypt(t, nodeDir, raw, append(tokens, string(tampered)))
	for i, want := range plaintexts {
		if res[i].Plaintext == nil || *res[i].Plaintext != want {
			t.Fatalf("token %d: node got %+v", i, res[i])
		}
		if len(res[i].Header) != 2 || res[i].Header["alg"] != "A256KW" || res[i].Header["enc"] != "A256CBC-HS512" {
			t.Fatalf("token %d header %v", i, res[i].Header)
		}
	}
	var ans createQRAnswer
	if err := json.Unmarshal([]byte(*res[0].Plaintext), &ans); err != nil {
		t.Fatal(err)
	}
	png, _ := base64.StdEncoding.DecodeString(ans.QRBody)
	if _, err := ParsePayload(decodeQRPNG(t, png)); err != nil {
		t.Fatalf("QR opened by Node: %v", err)
	}
	if last := res[len(res)-1]; last.Plaintext != nil || last.Error == "" {
		t.Fatalf("node accepted a tampered token: %+v", last)
	}
}
