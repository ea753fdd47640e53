package crypto

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Redacted replaces a secret wherever one would otherwise be printed.
const Redacted = "[REDACTED]"

// Secret is a string that never prints: fmt, JSON and text marshalling all
// yield Redacted. Call Reveal where the value is really needed.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format implements fmt.Formatter for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = f.Write([]byte(strconv.Quote(s.String())))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalText implements encoding.TextMarshaler (and so JSON and YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// RedactToken describes a JWE (or any bearer token) without revealing it:
// its segment count and length are enough to debug a malformed token.
func RedactToken(tok string) string {
	if tok == "" {
		return "[empty token]"
	}
	return fmt.Sprintf("[token: %d segments, %d bytes]", strings.Count(tok, ".")+1, len(tok))
}

// BasicAuthorization is the Authorization header value the provider expects
// for a secret key: HTTP Basic with the key as user name and an empty
// password, "Basic " + base64(secret + ":"). It is a credential: never log it.
func BasicAuthorization(secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))
}

// Scrubber removes known secret values from free text such as an upstream
// error message or a wrapped error, in their plain, base64 and Basic-auth
// forms. Build it once at provisioning; Scrub is safe for concurrent use.
type Scrubber struct {
	r *strings.Replacer
}

// NewScrubber returns a Scrubber for the given secrets; empty ones and ones
// shorter than 8 bytes (which would mangle ordinary words) are ignored.
func NewScrubber(secrets ...string) *Scrubber {
	var patterns []string
	add := func(s string) {
		if len(s) >= 8 {
			patterns = append(patterns, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(base64.StdEncoding.EncodeToString([]byte(s)))
		add(base64.RawURLEncoding.EncodeToString([]byte(s)))
		// The Basic credential for a secret key used as username, empty password.
		add(strings.TrimPrefix(BasicAuthorization(s), "Basic "))
	}
	if len(patterns) == 0 {
		return &Scrubber{}
	}
	// strings.Replacer prefers earlier pairs at the same position: longest
	// first, so a Basic credential is not half-replaced by its prefix.
	sort.Slice(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	pairs := make([]string, 0, 2*len(patterns))
	for _, p := range patterns {
		pairs = append(pairs, p, Redacted)
	}
	return &Scrubber{r: strings.NewReplacer(pairs...)}
}

// Scrub returns s with every known secret replaced by Redacted.
func (sc *Scrubber) Scrub(s string) string {
	if sc == nil || sc.r == nil {
		return s
	}
	return sc.r.Replace(s)
}
