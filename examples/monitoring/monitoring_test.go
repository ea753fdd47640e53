package monitoring_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/internal/quickstart"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/internal/testenv"
)

// TestAlertRules: the rules load, and their unit tests pass
// (promtool test rules: each alert fires on the series that should fire it
// and stays quiet on the others).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian: apt-get install prometheus): %v", err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboardIsGrafanaJSON: the dashboard parses, and every panel has a
// query.
func TestDashboardIsGrafanaJSON(t *testing.T) {
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard.json: %v", err)
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// metricName finds qrphgate's metric names in a rule file or a dashboard.
var metricName = regexp.MustCompile(`qrphgate_[a-z0-9_]+`)

// TestEveryReferencedMetricIsExposed scrapes a running gateway, the
// committed quickstart with a Redis store (so the store's series exist too)
// after one QR was created and paid, and checks that every metric the rules
// and the dashboard name is one it exposes.
func TestEveryReferencedMetricIsExposed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	referenced := map[string][]string{}
	for _, f := range []string{"rules.yml", "rules_test.yml", "dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(b), -1) {
			referenced[name] = append(referenced[name], f)
		}
	}

	redis := redistest.Start(t, redistest.Options{})
	qs := startQuickstartWithStore(t, redis.URL())
	createAndPay(t, qs)
	e2e.WaitFor(t, 60*time.Second, "/readyz to answer ok", func() bool {
		code, body := get(t, qs.ops+"/readyz")
		return code == 200 && strings.Contains(body, `"status":"ok"`)
	})
	_, scrape := get(t, qs.ops+"/metrics")
	exposed := map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exposed[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	var missing []string
	for name, files := range referenced {
		// A histogram's family name stands for its _bucket, _sum and _count.
		if !exposed[name] && !exposed[name+"_bucket"] {
			missing = append(missing, fmt.Sprintf("%s (in %s)", name, strings.Join(files, ", ")))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("named in the rules or the dashboard but not exposed:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(referenced) < 15 {
		t.Fatalf("only %d metric names found in the rules and the dashboard", len(referenced))
	}
}

type running struct {
	api, sandbox, ops string
}

// startQuickstartWithStore runs the committed quickstart on free ports with
// `store <url>` added to its modulus_api.
func startQuickstartWithStore(t *testing.T, storeURL string) running {
	t.Helper()
	p := quickstart.Ports{API: e2e.FreePort(t), Sandbox: e2e.FreePort(t), Webhook: e2e.FreePort(t), Ops: e2e.FreePort(t),
		Admin: fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))}
	cfg, err := quickstart.Rewrite(quickstart.Caddyfile(t), p)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("\t\twebhooks_url http://127.0.0.1:%d\n", p.Sandbox)
	if !strings.Contains(cfg, line) {
		t.Fatalf("the quickstart's modulus_api has no line %q", line)
	}
	cfg = strings.Replace(cfg, line, line+"\t\tstore "+storeURL+"\n", 1)
	dir := t.TempDir()
	quickstart.CopyFakeSecrets(t, dir)
	e2e.Start(t, e2e.Options{Caddyfile: cfg, AdminAddr: p.Admin, Dir: dir})
	return running{
		api:     fmt.Sprintf("http://127.0.0.1:%d", p.API),
		sandbox: fmt.Sprintf("http://127.0.0.1:%d", p.Sandbox),
		ops:     fmt.Sprintf("http://127.0.0.1:%d", p.Ops),
	}
}

// createAndPay creates a QR, pays it in the simulator and waits until the
// webhook reached the demo inbox: every direction has carried traffic.
func createAndPay(t *testing.T, qs running) {
	t.Helper()
	resp, err := http.Post(qs.api+"/v1/pay/qr", "application/json",
		strings.NewReader(`{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"MON-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var qr struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&qr)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || qr.ID == "" {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	resp, err = http.Post(qs.sandbox+"/sandbox/qr/"+qr.ID+"/pay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("pay: %d", resp.StatusCode)
	}
	e2e.WaitFor(t, 60*time.Second, "the delivery in the demo inbox", func() bool {
		_, body := get(t, qs.sandbox+"/sandbox/inbox")
		return strings.Contains(body, `"referenceNumber":"MON-1"`)
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
