package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
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
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("modulus_api takes no arguments, only a block of options")
	}
	seen := make(map[string]bool)
	// inline records, with file and line, each secret not given as a
	// placeholder; it is an error once the environment is known to be
	// production (the option may come after the secrets).
	var inline []error
	noteInline := func(opt string, values ...string) {
		for _, v := range values {
			if !secretPlaceholder.MatchString(v) {
				inline = append(inline, d.Errf("modulus_api: with environment production, %s must be an {env.NAME} or {file.PATH} placeholder (a literal or {$NAME} ends up in the adapted JSON)", opt))
				return
			}
		}
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("modulus_api option %q given twice", opt)
		}
		seen[opt] = true
		if opt == "circuit_breaker" {
			var err error
			if a.CircuitBreaker, err = parseBreaker(d); err != nil {
				return err
			}
			continue
		}
		o, err := readOption(d, "modulus_api")
		if err != nil {
			return err
		}
		switch opt {
		case "environment":
			if a.Environment, err = o.one(); err == nil && a.Environment != policy.Sandbox && a.Environment != policy.Production {
				err = o.errf("must be sandbox or production")
			}
		case "secret_key":
			a.SecretKey, err = o.secret()
		case "encryption_key":
			a.EncryptionKey, err = o.secret()
		case "key_encoding":
			if a.KeyEncoding, err = o.one(); err == nil {
				if _, e := crypto.ParseEncoding(a.KeyEncoding); e != nil {
					err = d.Errf("modulus_api: key_encoding: %v", e)
				}
			}
		case "activation_code":
			a.ActivationCode, err = o.one()
			noteInline(opt, a.ActivationCode)
		case "merchants":
			a.Merchants, err = o.some()
			noteInline(opt, a.Merchants...)
		case "qr_url", "webhooks_url":
			var v string
			if v, err = o.one(); err == nil {
				if _, e := policy.CheckUpstreamURL(opt, v); e != nil {
					err = d.Errf("modulus_api: %v", e)
				} else if opt == "qr_url" {
					a.QRURL = v
				} else {
					a.WebhooksURL = v
				}
			}
		case "webhooks_payload":
			if a.WebhooksPayload, err = o.one(); err == nil && a.WebhooksPayload != proxy.WebhooksPayloadPlain && a.WebhooksPayload != proxy.WebhooksPayloadJWE {
				err = o.errf("must be plain or jwe")
			}
		case "rate_limit":
			if a.RateLimit, err = o.one(); err == nil {
				if _, e := policy.ParseRateLimit(a.RateLimit); e != nil {
					err = d.Errf("modulus_api: rate_limit: %v", e)
				}
			}
		case "max_wait":
			var dur caddy.Duration
			if dur, err = o.duration(true); err == nil {
				a.MaxWait = &dur
			}
		case "timeout":
			a.Timeout, err = o.duration(false)
		case "max_queue":
			a.MaxQueue, err = o.integer(1, 1<<20)
		case "retries":
			var n int
			if n, err = o.integer(0, 10); err == nil {
				a.Retries = &n
			}
		case "auth_failures":
			a.AuthFailures, err = o.integer(1, 100)
		case "store":
			if a.Store, err = o.one(); err == nil {
				if e := checkStoreSpec(a.Store); e != nil {
					err = d.Errf("modulus_api: %v", e)
				}
			}
		case "policy":
			a.Policy, err = o.one()
		default:
			return d.Errf("unknown modulus_api option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	if a.Environment == policy.Production && len(inline) > 0 {
		return inline[0]
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
// (A Caddyfile block cannot open and close on one line.)
func parseBreaker(d *caddyfile.Dispenser) (*BreakerConfig, error) {
	b := new(BreakerConfig)
	seen := make(map[string]bool)
	set := func(key, v string) error {
		if seen[key] {
			return d.Errf("circuit_breaker setting %q given twice", key)
		}
		seen[key] = true
		switch key {
		case "failures", "probes":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return d.Errf("circuit_breaker %s must be a whole number from 1 to 1000", key)
			}
			if key == "failures" {
				b.Failures = n
			} else {
				b.Probes = n
			}
		case "window", "open":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("circuit_breaker %s must be a positive duration such as 30s", key)
			}
			if key == "window" {
				b.Window = caddy.Duration(dur)
			} else {
				b.Open = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown circuit_breaker setting %q (want failures, window, open, probes)", key)
		}
		return nil
	}
	args := d.RemainingArgs()
	if len(args)%2 != 0 {
		return nil, d.Errf("circuit_breaker takes setting-value pairs: failures 5 window 30s open 30s probes 1")
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
			return nil, d.Errf("circuit_breaker %s takes one value", key)
		}
		v := args[0]
		if err := set(key, v); err != nil {
			return nil, err
		}
	}
	if len(seen) == 0 {
		return nil, d.Errf("circuit_breaker needs settings: failures 5 window 30s open 30s probes 1")
	}
	return b, nil
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*API)(nil)
