package qrphgate_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// runbookURL is where every alert's runbook_url points (the runbook on the
// default branch); the fragment must be a heading of docs/runbook.md.
const runbookURL = "https://github.com/qrphgate/qrphgate/blob/main/docs/runbook.md#"

// TestRunbookCoversEveryAlert: every alert of examples/monitoring/rules.yml
// has a runbook_url into a section of docs/runbook.md, and the runbook names
// the alert.
func TestRunbookCoversEveryAlert(t *testing.T) {
	b, err := os.ReadFile("examples/monitoring/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	rb, err := os.ReadFile("docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	slugs := headingSlugs(string(rb))
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			fragment, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookURL)
			if !ok || !slices.Contains(slugs, fragment) {
				t.Errorf("%s: runbook_url %q is not a section of docs/runbook.md", r.Alert, r.Annotations["runbook_url"])
			}
			if !strings.Contains(string(rb), "`"+r.Alert+"`") {
				t.Errorf("docs/runbook.md does not name %s", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d alerts in rules.yml", n)
	}
}
