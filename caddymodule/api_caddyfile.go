package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/qrphgate/qrphgate/policy"
)

func parseAPICaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	a := new(API)
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return a, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	modulus_api {
//		environment      sandbox|production
//		secret_key       {env.MODULUS_SECRET_KEY}
//		encryption_key   {env.MODULUS_ENCRYPTION_KEY}
//		key_encoding     utf8|base64|base64url|hex
//		activation_code  {env.MODULUS_ACTIVATION_CODE}
//		merchants        <activation code>...
//		qr_url           <https URL>
//		webhooks_url     <https URL>
//		webhooks_payload plain|jwe
//		rate_limit       <N>/<duration>
//		merchant_rate_limit <N>/<duration>
//		max_wait         <duration>
//		max_queue        <N>
//		timeout          <duration>
//		retries          <N>
//		auth_failures    <N>
//		circuit_breaker  failures <N> window <duration> open <duration> probes <N>
//		store            memory|file:///path|<redis-url>
//		policy           <path>
//	}
//
// A <redis-url> is redis://[:{env.REDIS_PASSWORD}@]host:port/db (one
// server), redis-cluster://[:{env.REDIS_PASSWORD}@]host:port,host:port,...
// (a Redis Cluster) or
// redis-sentinel://[:{env.REDIS_PASSWORD}@]host:port,host:port/MASTERNAME[/db]
// (Sentinel), with rediss://, rediss-cluster://, rediss-sentinel:// (or
// ?tls=true) for TLS; see docs/managed-redis.md.
//
// circuit_breaker takes its settings as pairs on one line, as above, or as a
// block with one setting per line (a Caddyfile block cannot open and close
// on one line).
// Every option may appear once. secret_key and encryption_key must be
// {env.*}/{file.*} placeholders already here, and with environment
// production so must activation_code and merchants: a literal (or a {$VAR},
// which the adapter has already substituted) would be printed by
// `qrphgate adapt`.
func (a *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	// ifProduction holds, with its file and line, the error of an inline
	// activation code should the environment be production: the option
	// may come before environment.
	var ifProduction error
	err := eachOption(d, "modulus_api", nil, func(opt string) error {
		if opt == "circuit_breaker" {
			at := optionLine{d: d, module: "modulus_api", opt: opt, file: d.File(), line: d.Line()}
			b, err := parseBreaker(d)
			if err != nil {
				return err
			}
			a.CircuitBreaker = b
			return at.failAt(checkRule(apiRules, a, opt))
		}
		line, err := readOption(d, "modulus_api")
		if err != nil {
			return err
		}
		switch opt {
		case "environment":
			a.Environment, err = line.one()
		case "secret_key":
			a.SecretKey, err = line.one()
		case "encryption_key":
			a.EncryptionKey, err = line.one()
		case "key_encoding":
			a.KeyEncoding, err = line.one()
		case "activation_code":
			a.ActivationCode, err = line.one()
		case "merchants":
			a.Merchants, err = line.some()
		case "qr_url":
			a.QRURL, err = line.one()
		case "webhooks_url":
			a.WebhooksURL, err = line.one()
		case "webhooks_payload":
			a.WebhooksPayload, err = line.one()
		case "rate_limit":
			a.RateLimit, err = line.one()
		case "merchant_rate_limit":
			a.MerchantRateLimit, err = line.one()
		case "max_wait":
			var dur caddy.Duration
			if dur, err = line.durationOrZero(); err == nil {
				a.MaxWait = &dur
			}
		case "timeout":
			a.Timeout, err = line.duration()
		case "max_queue":
			a.MaxQueue, err = line.integer(1, maxQueueLimit)
		case "retries":
			var n int
			if n, err = line.integer(0, maxRetries); err == nil {
				a.Retries = &n
			}
		case "auth_failures":
			a.AuthFailures, err = line.integer(1, maxAuthFailures)
		case "store":
			a.Store, err = line.one()
		case "policy":
			a.Policy, err = line.one()
		default:
			return unknownOption(d, "modulus_api", opt)
		}
		if err != nil {
			return err
		}
		if opt == "activation_code" || opt == "merchants" {
			asProduction := *a
			asProduction.Environment = policy.Production
			if e := line.fail(checkRule(apiRules, &asProduction, opt)); e != nil && ifProduction == nil {
				ifProduction = e
			}
		}
		return line.fail(checkRule(apiRules, a, opt))
	})
	if err != nil {
		return err
	}
	if a.Environment == policy.Production {
		return ifProduction
	}
	return nil
}

// parseBreaker reads the circuit_breaker settings, as key-value arguments
// on the option's line or as a block with one setting per line:
//
//	circuit_breaker failures 5 window 30s open 30s probes 1
//	circuit_breaker {
//		failures 5
//		window   30s
//	}
//
// (A Caddyfile block cannot open and close on one line.) It only turns
// text into values; their ranges are the circuit_breaker rule's
// (BreakerConfig.check), which the caller applies. A value that is not a
// number or a duration, or a written zero (zero is "not set", so the rule
// cannot see it), is refused here with the rule's message.
func parseBreaker(d *caddyfile.Dispenser) (*BreakerConfig, error) {
	b := new(BreakerConfig)
	seen := make(map[string]bool)
	set := func(key, v string) error {
		if seen[key] {
			return d.Errf("modulus_api: circuit_breaker setting %q given twice", key)
		}
		seen[key] = true
		switch key {
		case "failures", "probes":
			n, err := strconv.Atoi(v)
			if err != nil || n == 0 {
				return d.Errf("modulus_api: %v", errBreakerCount(key))
			}
			if key == "failures" {
				b.Failures = n
			} else {
				b.Probes = n
			}
		case "window", "open":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur == 0 {
				return d.Errf("modulus_api: %v", errBreakerDuration(key))
			}
			if key == "window" {
				b.Window = caddy.Duration(dur)
			} else {
				b.Open = caddy.Duration(dur)
			}
		default:
			return d.Errf("modulus_api: unknown circuit_breaker setting %q (want failures, window, open, probes)", key)
		}
		return nil
	}
	args := d.RemainingArgs()
	if len(args)%2 != 0 {
		return nil, d.Errf("modulus_api: circuit_breaker takes setting-value pairs: failures 5 window 30s open 30s probes 1")
	}
	for i := 0; i < len(args); i += 2 {
		if err := set(args[i], args[i+1]); err != nil {
			return nil, err
		}
	}
	for nest := d.Nesting(); d.NextBlock(nest); {
		key := d.Val()
		args := d.RemainingArgs()
		if len(args) != 1 {
			return nil, d.Errf("modulus_api: circuit_breaker %s takes one value", key)
		}
		v := args[0]
		if err := set(key, v); err != nil {
			return nil, err
		}
	}
	if len(seen) == 0 {
		return nil, d.Errf("modulus_api: circuit_breaker needs settings: failures 5 window 30s open 30s probes 1")
	}
	return b, nil
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*API)(nil)
