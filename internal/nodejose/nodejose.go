// Package nodejose runs the provider's documented Node library (panva/jose,
// installed in crypto/testdata/node) on tokens from Go tests: the
// cross-implementation check shared by the crypto and sandbox tests.
package nodejose

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qrphgate/qrphgate/internal/testenv"
)

// Result is what decrypt.mjs answered for one token: the plaintext and
// protected header, or an error.
type Result struct {
	Plaintext *string        `json:"plaintext"`
	Header    map[string]any `json:"header"`
	Error     string         `json:"error"`
}

// Require skips t (fails it under CI) unless node and the jose package in
// dir (crypto/testdata/node, after npm ci) are there.
func Require(t testing.TB, dir string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose")); err != nil {
		testenv.Missing(t, "run npm ci in crypto/testdata/node")
	}
}

// Decrypt has decrypt.mjs in dir open each token with key and returns one
// Result per token, in order.
func Decrypt(t testing.TB, dir string, key []byte, tokens []string) []Result {
	t.Helper()
	Require(t, dir)
	type item struct {
		KeyHex string `json:"key_hex"`
		Token  string `json:"token"`
	}
	in := make([]item, len(tokens))
	for i, tok := range tokens {
		in[i] = item{hex.EncodeToString(key), tok}
	}
	stdin, _ := json.Marshal(in)
	cmd := exec.Command("node", "decrypt.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node decrypt.mjs: %v", err)
	}
	var res []Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if len(res) != len(tokens) {
		t.Fatalf("node answered %d results for %d tokens", len(res), len(tokens))
	}
	return res
}
