package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestLogsCarryNoSecrets drives every path that logs (create, refusals,
// registration, simulate, failed and successful deliveries, the inbox) and
// checks that no log line holds a key, a token, an Authorization header or
// a decrypted body, while the lines that should be there are.
func TestLogsCarryNoSecrets(t *testing.T) {
	h := newHarness(t, nil)
	good := newCallback(t)
	bad := newCallback(t, 500)
	h.register("QRPH_SUCCESS", good.srv.URL+"/h?token=query-secret-value", "")
	h.register("QRPH_SUCCESS", bad.srv.URL, "")

	var tokens []string
	pt := `{"activationCode":"` + testMerchant + `","currency":"PHP","amount":"500.00","merchantReferenceNumber":"ORDER-LOG"}`
	reqBody := h.seal(pt)
	resp, body := h.request(http.MethodPost, "/v1/pay/qr", "application/json", reqBody, true)
	if resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var env map[string]string
	_ = json.Unmarshal([]byte(reqBody), &env)
	tokens = append(tokens, env["Token"])
	_ = json.Unmarshal(body, &env)
	tokens = append(tokens, env["Token"])
	ans := h.openAnswer(body)

	// Refusals of every kind.
	h.request(http.MethodPost, "/v1/pay/qr", "application/json", reqBody, false)
	h.request(http.MethodPost, "/v1/pay/qr", "application/json", `{"Token":"`+env["Token"][:40]+`"}`, true)
	h.request(http.MethodPost, "/v1/pay/qr", "application/json", h.seal(strings.Replace(pt, "500.00", "5", 1)), true)

	h.simulate(ans.ID, "SUCCESS")
	waitFor(t, "both deliveries", func() bool { return good.count() == 1 && bad.count() == 1 })
	_ = json.Unmarshal(good.request(0).body, &env)
	tokens = append(tokens, env["data"])
	h.deliver(samplePayload, "evt_1", "1", "", nil)
	waitFor(t, "the delivery logs", func() bool {
		return h.logs.FilterMessage("simulated webhook delivery attempt").Len() == 2
	})

	forbidden := []string{
		testSecret, testKeyText,
		base64.StdEncoding.EncodeToString([]byte(testSecret + ":")),
		"eyJhbGciOiJBMjU2S1ci", // any JWE with the provider's header
		"query-secret-value", `"transactionId"`, `"qrBody"`, `"activationCode"`, "ph.ppmi.p2m",
	}
	forbidden = append(forbidden, tokens...)
	entries := h.logs.All()
	if len(entries) < 6 {
		t.Fatalf("only %d log entries: the test would prove nothing", len(entries))
	}
	for _, e := range entries {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, f := range forbidden {
			if strings.Contains(line, f) {
				t.Fatalf("log line reveals %.24q…: %s", f, line)
			}
		}
	}
	created := h.logs.FilterMessage("simulated QR created").All()
	if len(created) != 1 || created[0].ContextMap()["reference"] != "ORDER-LOG" || created[0].ContextMap()["transaction_id"] != ans.ID {
		t.Fatalf("create log %+v", created)
	}
	if h.logs.FilterMessage("simulated payment outcome").Len() != 1 {
		t.Fatal("no log line for the simulated payment")
	}
}
