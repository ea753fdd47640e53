// Package nodewebhooks has the official Node Standard Webhooks library (the
// standardwebhooks package the Node example app installs in
// examples/apps/node) verify deliveries from Go tests, as an app in Node
// would: the cross-implementation check of Webhook-Signature.
package nodewebhooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qrphgate/qrphgate/internal/testenv"
)

// Delivery is one request as the app received it.
type Delivery struct {
	Header http.Header
	Body   []byte
}

// Result is the library's verdict on one delivery: verified, or its error.
type Result struct {
	Verified bool   `json:"verified"`
	Error    string `json:"error"`
}

// Require skips t (fails it under CI) unless node and the standardwebhooks
// package in dir (examples/apps/node, after npm ci) are there.
func Require(t testing.TB, dir string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		testenv.Missing(t, "run npm ci in examples/apps/node (standardwebhooks is not installed)")
	}
}

// script verifies each delivery read from stdin with `new Webhook(secret)`
// (a whsec_ secret) or the secret's bytes (format raw), as the Node example
// app does, on the raw body bytes; the library also refuses timestamps more
// than 5 minutes from now.
const script = `
const { Webhook } = require('standardwebhooks');
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const { secret, deliveries } = JSON.parse(input);
  const wh = secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
  const out = deliveries.map((d) => {
    try {
      wh.verify(Buffer.from(d.body, 'base64'), d.headers, { jsonParse: false });
      return { verified: true, error: '' };
    } catch (e) {
      return { verified: false, error: String(e && e.message || e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
`

// Verify has the library in dir check every delivery with secret and
// returns one Result per delivery, in order.
func Verify(t testing.TB, dir, secret string, deliveries []Delivery) []Result {
	t.Helper()
	Require(t, dir)
	type item struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	in := struct {
		Secret     string `json:"secret"`
		Deliveries []item `json:"deliveries"`
	}{Secret: secret}
	for _, d := range deliveries {
		h := make(map[string]string)
		for k := range d.Header {
			h[k] = d.Header.Get(k)
		}
		in.Deliveries = append(in.Deliveries, item{Headers: h, Body: base64.StdEncoding.EncodeToString(d.Body)})
	}
	stdin, _ := json.Marshal(in)
	cmd := exec.Command("node", "-e", script)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node (standardwebhooks): %v\n%s", err, stderr.Bytes())
	}
	var res []Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if len(res) != len(deliveries) {
		t.Fatalf("node answered %d results for %d deliveries", len(res), len(deliveries))
	}
	return res
}
