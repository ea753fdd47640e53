package caddymodule

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/sandbox"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("modulus_sandbox", parseSandboxCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("modulus_sandbox", httpcaddyfile.Before, "reverse_proxy")
}

// UnmarshalCaddyfile sets up the simulator from Caddyfile tokens. Syntax:
//
//	modulus_sandbox {
//		secret_key        <sk_test_...|{env.NAME}|{file.PATH}>   # required
//		encryption_key    <key|{env.NAME}|{file.PATH}>           # required
//		key_encoding      utf8|base64|base64url|hex              # default utf8
//		activation_codes  <XXXX-XXXX-XXXX-XXXX>...               # default: any well-formed code
//		rate_limit        <N/duration>                           # default 100/1m
//		retry_intervals   <duration>...                          # default 15m 15m 15m
//		latency           <duration>                             # default 0
//		error_rate        <0..1|N%>                              # default 0
//		webhook_source    <ip>                                   # default: the system's choice
//		inbox_sign_secret <whsec_...|{env.NAME}|{file.PATH}>     # default: signatures not checked
//		callbacks         <url>...                               # registered at start for both actions
//	}
//
// Unknown and repeated options are errors. Values that can be checked
// without secrets are checked here, with the file and line.
func (s *Sandbox) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	pol := policy.Default()
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("modulus_sandbox: %s given twice", opt)
		}
		seen[opt] = true
		line, err := readOption(d, "modulus_sandbox")
		if err != nil {
			return err
		}
		args := line.args
		switch opt {
		case "secret_key":
			s.SecretKey, err = line.one()
		case "encryption_key":
			s.EncryptionKey, err = line.one()
		case "inbox_sign_secret":
			s.InboxSignSecret, err = line.one()
		case "key_encoding":
			if s.KeyEncoding, err = line.one(); err == nil {
				if _, perr := crypto.ParseEncoding(s.KeyEncoding); perr != nil {
					return d.Errf("modulus_sandbox: key_encoding: %v", perr)
				}
			}
		case "activation_codes":
			if len(args) == 0 {
				return d.Errf("modulus_sandbox: activation_codes needs at least one code")
			}
			for _, code := range args {
				if perr := pol.CheckActivationCode("activation_codes", code); perr != nil {
					return d.Errf("modulus_sandbox: %v", perr)
				}
			}
			s.ActivationCodes = args
		case "rate_limit":
			if s.RateLimit, err = line.one(); err == nil {
				if _, perr := policy.ParseRateLimit(s.RateLimit); perr != nil {
					return d.Errf("modulus_sandbox: rate_limit: %v", perr)
				}
			}
		case "retry_intervals":
			if len(args) == 0 {
				return d.Errf("modulus_sandbox: retry_intervals needs at least one duration")
			}
			for _, a := range args {
				dur, perr := caddy.ParseDuration(a)
				if perr != nil || dur <= 0 {
					return d.Errf("modulus_sandbox: retry_intervals: %q is not a positive duration", a)
				}
				s.RetryIntervals = append(s.RetryIntervals, caddy.Duration(dur))
			}
		case "latency":
			var v string
			if v, err = line.one(); err == nil {
				dur, perr := caddy.ParseDuration(v)
				if perr != nil || dur < 0 {
					return d.Errf("modulus_sandbox: latency: %q is not a duration", v)
				}
				s.Latency = caddy.Duration(dur)
			}
		case "error_rate":
			var v string
			if v, err = line.one(); err == nil {
				if s.ErrorRate, err = parseRate(v); err != nil {
					return d.Errf("modulus_sandbox: error_rate: %v", err)
				}
			}
		case "callbacks":
			if len(args) == 0 {
				return d.Errf("modulus_sandbox: callbacks needs at least one URL")
			}
			for _, u := range args {
				if perr := sandbox.CheckCallbackURL(u); perr != nil {
					return d.Errf("modulus_sandbox: callbacks: %v", perr)
				}
			}
			s.Callbacks = args
		case "webhook_source":
			if s.WebhookSource, err = line.one(); err == nil {
				if a, perr := netip.ParseAddr(s.WebhookSource); perr != nil || a.Zone() != "" {
					return d.Errf("modulus_sandbox: webhook_source must be an IP address such as 127.0.0.2")
				}
			}
		default:
			return d.Errf("modulus_sandbox: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseRate reads a share as a fraction ("0.1") or a percentage ("10%").
func parseRate(v string) (float64, error) {
	scale := 1.0
	if p, ok := strings.CutSuffix(v, "%"); ok {
		v, scale = p, 100
	}
	f, err := strconv.ParseFloat(v, 64)
	if r := f / scale; err != nil || !(r >= 0 && r <= 1) { // also refuses NaN
		return 0, errRate
	}
	return f / scale, nil
}

var errRate = errors.New("want a fraction between 0 and 1 or a percentage, e.g. 0.1 or 10%")

func parseSandboxCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Sandbox)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Sandbox)(nil)
