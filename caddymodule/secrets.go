package caddymodule

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// secretPlaceholder is the only form a secret may take in production: one
// {env.NAME} or {file.PATH} placeholder, resolved at provision time so the
// value never enters the config (unlike {$NAME}, which the Caddyfile adapter
// substitutes into the JSON).
var secretPlaceholder = regexp.MustCompile(`^\{(env|file)\.[^{}]+\}$`)

// checkSecretForm is the rule for the configured form of every
// secret-bearing option: a single {env.NAME} or {file.PATH} placeholder or,
// only where literalOK (the sandbox, where obviously fake keys are normal),
// a literal without braces. An empty value passes: whether the option is
// required is checked where it is resolved. The error names the option,
// never the value.
func checkSecretForm(field, raw string, literalOK bool) error {
	switch {
	case raw == "", secretPlaceholder.MatchString(raw):
		return nil
	case literalOK && !strings.ContainsAny(raw, "{}"):
		return nil
	case literalOK:
		return fmt.Errorf("%s must be a literal or a single {env.NAME} or {file.PATH} placeholder", field)
	}
	return fmt.Errorf("%s must be a {env.NAME} or {file.PATH} placeholder (never {$NAME} or a literal: they end up in the adapted JSON)", field)
}

// resolveSecret expands a secret-bearing option whose form checkSecretForm
// accepts; a placeholder must resolve to a non-empty value. Errors name the
// option and the placeholder, never the value.
func resolveSecret(repl *caddy.Replacer, field, raw string, literalOK bool) (value string, inline bool, err error) {
	if raw == "" {
		return "", false, fmt.Errorf("%s is required", field)
	}
	if err := checkSecretForm(field, raw, literalOK); err != nil {
		return "", false, err
	}
	if !secretPlaceholder.MatchString(raw) {
		return raw, true, nil
	}
	v := repl.ReplaceKnown(raw, "")
	if v == "" {
		return "", false, fmt.Errorf("%s: %s is empty or unset", field, raw)
	}
	return v, false, nil
}
