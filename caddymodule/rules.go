package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// An option's rule is one function of the value as configured (placeholders
// not yet resolved). The Caddyfile parser applies it to the option it has
// just read, so the error carries the file and line; Provision applies every
// rule again, so a JSON config gets the same limits and the same message.
// The helpers below are the rules several options share.

// optionRule is one option's rule on a module's configured value.
type optionRule[M any] struct {
	opt   string
	check func(M) error
}

// checkRule applies the rule of opt, if it has one.
func checkRule[M any](rules []optionRule[M], m M, opt string) error {
	for _, r := range rules {
		if r.opt == opt {
			return r.check(m)
		}
	}
	return nil
}

// checkRules applies every rule in order and returns the first error.
func checkRules[M any](rules []optionRule[M], m M) error {
	for _, r := range rules {
		if err := r.check(m); err != nil {
			return err
		}
	}
	return nil
}

// checkPositiveDuration: a set duration must be above zero. Zero is "not
// set" in JSON; the Caddyfile refuses a written zero while parsing.
func checkPositiveDuration(opt string, d caddy.Duration) error {
	if d < 0 {
		return errPositiveDuration(opt)
	}
	return nil
}

func errPositiveDuration(opt string) error {
	return fmt.Errorf("%s must be a positive duration such as 10s or 72h", opt)
}

// checkNonNegativeDuration: zero is a meaningful value (never wait).
func checkNonNegativeDuration(opt string, d *caddy.Duration) error {
	if d != nil && *d < 0 {
		return errNonNegativeDuration(opt)
	}
	return nil
}

func errNonNegativeDuration(opt string) error {
	return fmt.Errorf("%s must be zero or a positive duration such as 10s", opt)
}

// checkRange: a whole number must lie in [lo, hi]. Callers skip the value
// JSON leaves when the option is absent (0, or a nil pointer).
func checkRange(opt string, n, lo, hi int) error {
	if n < lo || n > hi {
		return errRange(opt, lo, hi)
	}
	return nil
}

func errRange(opt string, lo, hi int) error {
	return fmt.Errorf("%s must be a whole number from %d to %d", opt, lo, hi)
}

// checkOneOf: a set value must be one of the choices.
func checkOneOf(opt, v string, choices ...string) error {
	if v == "" {
		return nil
	}
	for _, c := range choices {
		if v == c {
			return nil
		}
	}
	return fmt.Errorf("%s must be %s", opt, orList(choices))
}

// orList renders choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// checkNames: a list option of member names needs at least one, none empty.
func checkNames(opt string, names []string) error {
	for _, n := range names {
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("%s must not contain an empty name", opt)
		}
	}
	return nil
}

// listName names the value at index i (from 0) of a list option: opt[1],
// opt[2]... Every error about one value of a list names it so, before and
// after its placeholders are resolved.
func listName(opt string, i int) string { return fmt.Sprintf("%s[%d]", opt, i+1) }

// checkListed applies check to each value of a list option as configured,
// named by listName. A value that holds a placeholder is skipped here: the
// caller applies the same check to it once resolved, at provision.
func checkListed(opt string, values []string, check func(name, v string) error) error {
	for i, v := range values {
		if anyPlaceholder.MatchString(v) {
			continue
		}
		if err := check(listName(opt, i), v); err != nil {
			return err
		}
	}
	return nil
}

// durations converts configured durations.
func durations(ds []caddy.Duration) []time.Duration {
	if ds == nil {
		return nil
	}
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d)
	}
	return out
}
