package caddymodule

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// optionLine is one option line of a module's Caddyfile block, read whole
// (RemainingArgs), with the checks every module's options share. Errors
// name the module and the option and carry the file and line.
type optionLine struct {
	d      *caddyfile.Dispenser
	module string
	opt    string
	args   []string
}

// readOption reads the current option's values and refuses a block after
// them.
func readOption(d *caddyfile.Dispenser, module string) (optionLine, error) {
	o := optionLine{d: d, module: module, opt: d.Val(), args: d.RemainingArgs()}
	if d.NextBlock(d.Nesting()) {
		return o, o.errf("takes no block")
	}
	return o, nil
}

func (o optionLine) errf(format string, args ...any) error {
	return o.d.Errf("%s: %s "+format, append([]any{o.module, o.opt}, args...)...)
}

// at is where the line is, as file:line.
func (o optionLine) at() string { return fmt.Sprintf("%s:%d", o.d.File(), o.d.Line()) }

// one is the line's single value.
func (o optionLine) one() (string, error) {
	if len(o.args) != 1 {
		return "", o.errf("takes exactly one value")
	}
	return o.args[0], nil
}

// some is the line's values, at least one.
func (o optionLine) some() ([]string, error) {
	if len(o.args) == 0 {
		return nil, o.errf("needs at least one value")
	}
	return o.args, nil
}

// duration is the line's single value as a positive duration (zero too
// when zeroOK).
func (o optionLine) duration(zeroOK bool) (caddy.Duration, error) {
	v, err := o.one()
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur < 0 || (dur == 0 && !zeroOK) {
		return 0, o.errf("must be a positive duration such as 10s or 72h")
	}
	return caddy.Duration(dur), nil
}

// integer is the line's single value as a whole number in [lo, hi].
func (o optionLine) integer(lo, hi int) (int, error) {
	v, err := o.one()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, o.errf("must be a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

// secret is the line's single value, which must be an {env.*} or {file.*}
// placeholder: a literal (or a {$VAR} the adapter already substituted)
// would end up in the adapted JSON.
func (o optionLine) secret() (string, error) {
	v, err := o.one()
	if err != nil {
		return "", err
	}
	if !secretPlaceholder.MatchString(v) {
		return "", o.errf("must be a {env.NAME} or {file.PATH} placeholder (never {$NAME} or a literal: they end up in the adapted JSON)")
	}
	return v, nil
}
