package caddymodule

import (
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("modulus_health", parseHealthCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("modulus_health", httpcaddyfile.Before, "reverse_proxy")
}

// Limits of modulus_health's durations.
const (
	minHealthInterval = time.Second
	maxCheckTimeout   = time.Minute
)

// healthRules are modulus_health's option rules (see rules.go).
var healthRules = []optionRule[*Health]{
	{"health_interval", func(h *Health) error { return checkAtLeast("health_interval", h.HealthInterval, minHealthInterval) }},
	{"check_interval", func(h *Health) error { return checkAtLeast("check_interval", h.CheckInterval, minHealthInterval) }},
	{"check_timeout", func(h *Health) error {
		if h.CheckTimeout < 0 || time.Duration(h.CheckTimeout) > maxCheckTimeout {
			return errors.New("check_timeout must be a positive duration up to 1m, such as 5s")
		}
		return nil
	}},
	{"cert_warn", func(h *Health) error { return checkPositiveDuration("cert_warn", h.CertWarn) }},
	{"cert_names", func(h *Health) error { return checkNames("cert_names", h.CertNames) }},
}

// checkAtLeast: a set interval must be at least lo (zero is "not set").
func checkAtLeast(opt string, d caddy.Duration, lo time.Duration) error {
	if d < 0 || (d > 0 && time.Duration(d) < lo) {
		return errors.New(opt + " must be a duration of at least " + lo.String() + ", such as 60s")
	}
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	modulus_health {
//		health_interval <duration>   # default 60s: the provider's /ping on each API
//		check_interval  <duration>   # default 10s: spool and store probes
//		check_timeout   <duration>   # default 5s
//		cert_warn       <duration>   # default 14d
//		cert_names      <name...>    # default: the modulus_webhook sites' host names
//	}
//
// The block may be left out. Unknown and repeated options are errors.
func (h *Health) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return eachOption(d, "modulus_health", nil, func(opt string) error {
		line, err := readOption(d, "modulus_health")
		if err != nil {
			return err
		}
		switch opt {
		case "health_interval":
			h.HealthInterval, err = line.duration()
		case "check_interval":
			h.CheckInterval, err = line.duration()
		case "check_timeout":
			h.CheckTimeout, err = line.duration()
		case "cert_warn":
			h.CertWarn, err = line.duration()
		case "cert_names":
			h.CertNames, err = line.some()
		default:
			return unknownOption(d, "modulus_health", opt)
		}
		if err != nil {
			return err
		}
		return line.fail(checkRule(healthRules, h, opt))
	})
}

func parseHealthCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Health)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Health)(nil)
