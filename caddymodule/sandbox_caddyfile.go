package caddymodule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
// Unknown and repeated options are errors. Each option's rule
// (sandboxRules) is applied here, with the file and line, and again at
// provision.
func (s *Sandbox) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return eachOption(d, "modulus_sandbox", nil, func(opt string) error {
		line, err := readOption(d, "modulus_sandbox")
		if err != nil {
			return err
		}
		switch opt {
		case "secret_key":
			s.SecretKey, err = line.one()
		case "encryption_key":
			s.EncryptionKey, err = line.one()
		case "inbox_sign_secret":
			s.InboxSignSecret, err = line.one()
		case "key_encoding":
			s.KeyEncoding, err = line.one()
		case "activation_codes":
			s.ActivationCodes, err = line.some()
		case "rate_limit":
			s.RateLimit, err = line.one()
		case "retry_intervals":
			var args []string
			if args, err = line.some(); err == nil {
				for _, a := range args {
					dur, perr := caddy.ParseDuration(a)
					if perr != nil || dur <= 0 {
						return line.fail(errPositiveDuration(opt))
					}
					s.RetryIntervals = append(s.RetryIntervals, caddy.Duration(dur))
				}
			}
		case "latency":
			s.Latency, err = line.durationOrZero()
		case "error_rate":
			var v string
			if v, err = line.one(); err == nil {
				if s.ErrorRate, err = parseRate(v); err != nil {
					return line.fail(fmt.Errorf("error_rate: %w", err))
				}
			}
		case "callbacks":
			s.Callbacks, err = line.some()
		case "webhook_source":
			s.WebhookSource, err = line.one()
		default:
			return unknownOption(d, "modulus_sandbox", opt)
		}
		if err != nil {
			return err
		}
		return line.fail(checkRule(sandboxRules, s, opt))
	})
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
