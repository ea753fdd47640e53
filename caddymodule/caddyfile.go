package caddymodule

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// eachOption walks the block of options of the directive under the cursor,
// with the rules every module shares: the directive line takes no
// arguments, an option not in repeatable may appear once, and fn (which
// handles the option named by d.Val()) answers unknownOption for a name it
// does not know. Every error carries the file and line.
func eachOption(d *caddyfile.Dispenser, module string, repeatable []string, fn func(opt string) error) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("%s takes no arguments, only a block of options", module)
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] && !slices.Contains(repeatable, opt) {
			return d.Errf("%s: option %q given twice", module, opt)
		}
		seen[opt] = true
		if err := fn(opt); err != nil {
			return err
		}
	}
	return nil
}

// unknownOption is the error for an option a module does not have.
func unknownOption(d *caddyfile.Dispenser, module, opt string) error {
	return d.Errf("%s: unknown option %q", module, opt)
}

// optionLine is one option line of a module's Caddyfile block, read whole
// (RemainingArgs), with the checks every module's options share. Errors
// name the module and the option and carry the file and line.
type optionLine struct {
	d      *caddyfile.Dispenser
	module string
	opt    string
	args   []string
	file   string
	line   int
}

// readOption reads the current option's values and refuses a block after
// them.
func readOption(d *caddyfile.Dispenser, module string) (optionLine, error) {
	o := optionLine{d: d, module: module, opt: d.Val(), file: d.File(), line: d.Line()}
	o.args = d.RemainingArgs()
	if d.NextBlock(d.Nesting()) {
		return o, o.errf("takes no block")
	}
	return o, nil
}

func (o optionLine) errf(format string, args ...any) error {
	return o.d.Errf("%s: %s "+format, append([]any{o.module, o.opt}, args...)...)
}

// fail gives a rule's error (which names the option) the module, file and
// line; nil stays nil.
func (o optionLine) fail(err error) error {
	if err == nil {
		return nil
	}
	return o.d.Errf("%s: %v", o.module, err)
}

// failAt is fail for a rule checked after the block (one that spans
// options): the error names this line's file and line, not the cursor's.
func (o optionLine) failAt(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w, at %s:%d", o.module, err, o.file, o.line)
}

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

// duration is the line's single value as a duration above zero; a written
// zero is refused here (in JSON, zero means the option is not set).
func (o optionLine) duration() (caddy.Duration, error) {
	v, err := o.one()
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, o.fail(errPositiveDuration(o.opt))
	}
	return caddy.Duration(dur), nil
}

// durationOrZero is the line's single value as a duration, zero allowed.
func (o optionLine) durationOrZero() (caddy.Duration, error) {
	v, err := o.one()
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur < 0 {
		return 0, o.fail(errNonNegativeDuration(o.opt))
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
	if err != nil {
		return 0, o.fail(errRange(o.opt, lo, hi))
	}
	return n, o.fail(checkRange(o.opt, n, lo, hi))
}

// secret is the line's single value, which must be an {env.*} or {file.*}
// placeholder: a literal (or a {$VAR} the adapter already substituted)
// would end up in the adapted JSON.
func (o optionLine) secret() (string, error) {
	v, err := o.one()
	if err != nil {
		return "", err
	}
	return v, o.fail(checkSecretForm(o.opt, v, false))
}
