// Package policy holds the provider's rules as data: environment profiles
// (hosts, rate limits, currencies, key prefixes), request validation, start-up
// credential checks and IP allowlists. The default policy is embedded YAML;
// an override file may replace parts of it.
//
// It is plain Go: it imports nothing from Caddy and nothing else of ours.
package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default policy, for documentation and
// as a starting point for an override file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Environment names.
const (
	Sandbox    = "sandbox"
	Production = "production"
)

// Policy is the complete rule set. Build it with Default, Load or Parse: the
// compiled patterns are filled in only there.
type Policy struct {
	Environments Environments `yaml:"environments"`
	QR           QRRules      `yaml:"qr"`
	Webhooks     WebhookRules `yaml:"webhooks"`

	reference      *regexp.Regexp
	activationCode *regexp.Regexp
}

// Environments are fixed at two, as fields (not a map) so that an override
// naming one key of one environment keeps the rest.
type Environments struct {
	Sandbox    Environment `yaml:"sandbox"`
	Production Environment `yaml:"production"`
}

// Environment is one provider environment's profile.
type Environment struct {
	// Name is sandbox or production; set by Policy.Environment.
	Name string `yaml:"-"`
	// QRURL is the base URL of the QR API.
	QRURL string `yaml:"qr_url"`
	// WebhooksURL is the base URL of the webhooks management API; empty
	// when the provider has not published it (production).
	WebhooksURL string `yaml:"webhooks_url"`
	// RateLimit is the provider's request budget.
	RateLimit RateLimit `yaml:"rate_limit"`
	// Currencies are the ISO 4217 codes accepted for create-QR.
	Currencies []string `yaml:"currencies"`
	// SecretKeyPrefix is what this environment's secret keys start with.
	SecretKeyPrefix string `yaml:"secret_key_prefix"`
}

// QRRules are the create-QR rules.
type QRRules struct {
	// Validity is how long a created QR can be paid (and so how long an
	// idempotent answer is kept).
	Validity Duration `yaml:"validity"`
	// Amount is the accepted range, inclusive.
	Amount AmountRange `yaml:"amount"`
	// ReferencePattern is the regular expression merchantReferenceNumber must match.
	ReferencePattern string `yaml:"reference_pattern"`
	// ActivationCodePattern is the regular expression activation codes must match.
	ActivationCodePattern string `yaml:"activation_code_pattern"`
}

// AmountRange bounds an amount, both ends inclusive.
type AmountRange struct {
	Min Amount `yaml:"min"`
	Max Amount `yaml:"max"`
}

// WebhookRules are the values the webhooks management API accepts.
type WebhookRules struct {
	// Actions are the known webhookAction values.
	Actions []string `yaml:"actions"`
	// Statuses are the known webhookStatus values.
	Statuses []string `yaml:"statuses"`
	// SimulateUseCases are the known useCase values of the simulate call.
	SimulateUseCases []string `yaml:"simulate_use_cases"`
}

// Default returns the embedded default policy.
func Default() *Policy {
	p, err := Parse(nil)
	if err != nil {
		panic("embedded default policy is invalid: " + err.Error()) // caught by TestDefaultPolicy
	}
	return p
}

// Load returns the default policy with the override file at path applied;
// an empty path means the default alone.
func Load(path string) (*Policy, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading policy %s: %w", path, err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("loading policy %s: %w", path, err)
	}
	return p, nil
}

// Parse applies an override document to the default policy and validates
// the result. Keys the override leaves out keep their default; lists are
// replaced whole; unknown keys are errors.
func Parse(override []byte) (*Policy, error) {
	p := new(Policy)
	if err := decodeStrict(defaultYAML, p); err != nil {
		return nil, fmt.Errorf("default policy: %w", err)
	}
	if err := decodeStrict(override, p); err != nil {
		return nil, err
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeStrict(doc []byte, into *Policy) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	// A second document would be silently ignored: refuse it.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("policy must be a single YAML document")
	}
	return nil
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

func (p *Policy) compile() error {
	for _, env := range []Environment{p.env(Sandbox), p.env(Production)} {
		if err := env.validate(); err != nil {
			return fmt.Errorf("environments.%s.%w", env.Name, err)
		}
	}
	q := p.QR
	if q.Validity <= 0 {
		return errors.New("qr.validity must be positive")
	}
	if q.Amount.Min <= 0 || q.Amount.Max < q.Amount.Min {
		return errors.New("qr.amount: need 0 < min <= max")
	}
	var err error
	if p.reference, err = compileAnchored("qr.reference_pattern", q.ReferencePattern); err != nil {
		return err
	}
	if p.activationCode, err = compileAnchored("qr.activation_code_pattern", q.ActivationCodePattern); err != nil {
		return err
	}
	for name, list := range map[string][]string{
		"webhooks.actions": p.Webhooks.Actions, "webhooks.statuses": p.Webhooks.Statuses,
		"webhooks.simulate_use_cases": p.Webhooks.SimulateUseCases,
	} {
		if len(list) == 0 {
			return fmt.Errorf("%s must not be empty", name)
		}
	}
	return nil
}

// compileAnchored compiles a pattern that must match whole values.
func compileAnchored(field, pattern string) (*regexp.Regexp, error) {
	if !strings.HasPrefix(pattern, "^") || !strings.HasSuffix(pattern, "$") {
		return nil, fmt.Errorf("%s must be anchored with ^ and $", field)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return re, nil
}

func (e Environment) validate() error {
	if e.QRURL == "" {
		return errors.New("qr_url must be set")
	}
	if _, err := CheckUpstreamURL("qr_url", e.QRURL); err != nil {
		return err
	}
	if e.WebhooksURL != "" {
		if _, err := CheckUpstreamURL("webhooks_url", e.WebhooksURL); err != nil {
			return err
		}
	}
	if e.RateLimit.Requests <= 0 {
		return errors.New("rate_limit must be set")
	}
	if len(e.Currencies) == 0 {
		return errors.New("currencies must not be empty")
	}
	for _, c := range e.Currencies {
		if !currencyCode.MatchString(c) {
			return fmt.Errorf("currencies: %q is not an ISO 4217 code", c)
		}
	}
	if !strings.HasPrefix(e.SecretKeyPrefix, "sk_") {
		return errors.New("secret_key_prefix must start with sk_")
	}
	return nil
}

func (p *Policy) env(name string) Environment {
	var e Environment
	switch name {
	case Sandbox:
		e = p.Environments.Sandbox
	case Production:
		e = p.Environments.Production
	}
	e.Name = name
	return e
}

// Environment returns the named environment's profile.
func (p *Policy) Environment(name string) (Environment, error) {
	if name != Sandbox && name != Production {
		return Environment{}, fmt.Errorf("environment must be %s or %s", Sandbox, Production)
	}
	return p.env(name), nil
}

// Other returns the environment that is not e, for mixed-environment checks.
func (p *Policy) Other(e Environment) Environment {
	if e.Name == Production {
		return p.env(Sandbox)
	}
	return p.env(Production)
}

// AllowsCurrency reports whether code is accepted in e.
func (e Environment) AllowsCurrency(code string) bool { return slices.Contains(e.Currencies, code) }

// RateLimit is a budget of Requests per Period, written "100/1m".
type RateLimit struct {
	Requests int
	Period   time.Duration
}

// ParseRateLimit parses "N/duration" ("100/1m", "1000/60s"); a bare unit
// ("100/m", "5/s", "100/min") means one of it.
func ParseRateLimit(s string) (RateLimit, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return RateLimit{}, fmt.Errorf("rate limit %q: want N/duration, e.g. 100/1m", s)
	}
	reqs, err := strconv.Atoi(n)
	if err != nil || reqs <= 0 {
		return RateLimit{}, fmt.Errorf("rate limit %q: request count must be a positive integer", s)
	}
	switch per {
	case "s", "sec", "second":
		per = "1s"
	case "m", "min", "minute":
		per = "1m"
	case "h", "hour":
		per = "1h"
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return RateLimit{}, fmt.Errorf("rate limit %q: period must be a positive duration", s)
	}
	return RateLimit{Requests: reqs, Period: d}, nil
}

// String formats r as ParseRateLimit reads it.
func (r RateLimit) String() string {
	if r.Requests == 0 {
		return ""
	}
	return strconv.Itoa(r.Requests) + "/" + shortDuration(r.Period)
}

func shortDuration(d time.Duration) string {
	s := d.String() // "1m0s", "1h0m0s", "30s"
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *RateLimit) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseRateLimit(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

// Duration is a time.Duration written as Go duration text ("15m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// Amount is a Centavos value written in YAML as the provider writes it ("1.00").
type Amount Centavos

// UnmarshalYAML implements yaml.Unmarshaler.
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return fmt.Errorf("line %d: amounts are quoted strings with two decimals, e.g. \"1.00\"", n.Line)
	}
	v, err := ParseAmount(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*a = Amount(v)
	return nil
}
