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

// resolveSecret expands a secret-bearing option. An inline (literal) value is
// accepted only when literalOK (the sandbox, where obviously fake keys are
// normal); anything else must be a single {env.*} or {file.*} placeholder
// that resolves to a non-empty value. Errors name the option and the
// placeholder, never the value.
func resolveSecret(repl *caddy.Replacer, field, raw string, literalOK bool) (value string, inline bool, err error) {
	switch {
	case raw == "":
		return "", false, fmt.Errorf("%s is required", field)
	case secretPlaceholder.MatchString(raw):
		v := repl.ReplaceKnown(raw, "")
		if v == "" {
			return "", false, fmt.Errorf("%s: %s is empty or unset", field, raw)
		}
		return v, false, nil
	case strings.ContainsAny(raw, "{}"):
		return "", false, fmt.Errorf("%s must be a single {env.NAME} or {file.PATH} placeholder", field)
	case !literalOK:
		return "", false, fmt.Errorf("%s must be given as {env.NAME} or {file.PATH} here: an inline value is stored in the config", field)
	}
	return raw, true, nil
}
