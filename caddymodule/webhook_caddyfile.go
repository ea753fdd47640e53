package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/policy"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("modulus_webhook", parseWebhookCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("modulus_webhook", httpcaddyfile.Before, "reverse_proxy")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	modulus_webhook {
//		decryption_key   <{env.NAME}|{file.PATH}>   # required; repeatable, tried in order
//		key_encoding     utf8|base64|base64url|hex  # default utf8
//		allow_ips        <cidr|address...>|any      # required; repeatable
//		activation_codes <code...>                  # optional; repeatable
//		forward_to       <url>                      # required
//		forward_timeout  <duration>                 # default 10s
//		sign_secret      <{env.NAME}|{file.PATH}>   # optional
//		spool            <path>|<redis-url>         # default <data dir>/qrphgate/webhooks.spool
//		store            <redis-url>                # optional: de-duplication shared by replicas
//		min_replicas     <n>                        # Redis spool: acknowledge once n replicas have the event; default 0
//		min_replicas_timeout <duration>             # how long to wait for them (then 503); default 1s, at most 5s
//		dedupe_window    <duration>                 # default 72h
//		redeliver_for    <duration>                 # default 72h
//		retry_backoff    <base> <max>               # default 2s 15m
//		max_body         <size>                     # default 64KB
//		action_fields    <name...>                  # default action webhookAction status
//		reference_fields <name...>                  # default referenceNumber merchantReferenceNumber transactionId id
//	}
//
// allow_ips, activation_codes and forward_to may be (or contain) {env.NAME}
// or {file.PATH} placeholders, resolved when the handler is provisioned; an
// allow_ips placeholder may expand to several space-separated entries.
//
// Secrets must be {env.*} or {file.*} placeholders: a literal (or a {$VAR}
// the adapter already substituted) is refused here, before it can reach
// the adapted JSON; so is an inline password in a Redis URL. A <redis-url>
// is one of
//
//	redis://[:{env.REDIS_PASSWORD}@]host:port/db                         one server
//	redis-cluster://[:{env.REDIS_PASSWORD}@]host:port,host:port,...      a Redis Cluster (seed nodes)
//	redis-sentinel://[:{env.REDIS_PASSWORD}@]host:port,host:port/MASTERNAME[/db]  Sentinel
//
// with rediss://, rediss-cluster://, rediss-sentinel:// (or ?tls=true) for
// TLS; see docs/managed-redis.md. Unknown and repeated options (other than
// the repeatable ones) are errors.
func (h *Webhook) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	minLine := "" // file:line of min_replicas (or its timeout), for the rule that spans options
	for d.NextBlock(0) {
		opt := d.Val()
		repeatable := opt == "decryption_key" || opt == "allow_ips" || opt == "activation_codes"
		if seen[opt] && !repeatable {
			return d.Errf("modulus_webhook: %s is given twice", opt)
		}
		seen[opt] = true
		line, err := readOption(d, "modulus_webhook")
		if err != nil {
			return err
		}
		switch opt {
		case "decryption_key":
			var v string
			if v, err = line.secret(); err == nil {
				h.DecryptionKeys = append(h.DecryptionKeys, v)
			}
		case "key_encoding":
			if h.KeyEncoding, err = line.one(); err == nil {
				if _, e := crypto.ParseEncoding(h.KeyEncoding); e != nil {
					return d.Errf("modulus_webhook: key_encoding: %v", e)
				}
			}
		case "allow_ips":
			var v []string
			if v, err = line.some(); err == nil {
				// Each line is checked here, for its file and line; the
				// whole list (any alone) again at provision.
				if _, e := policy.ParseIPAllowlist(v); e != nil && !anyPlaceholder.MatchString(strings.Join(v, " ")) {
					return d.Errf("modulus_webhook: %v", e)
				}
				h.AllowIPs = append(h.AllowIPs, v...)
			}
		case "activation_codes":
			var v []string
			if v, err = line.some(); err == nil {
				h.ActivationCodes = append(h.ActivationCodes, v...)
			}
		case "forward_to":
			if h.ForwardTo, err = line.one(); err == nil && !anyPlaceholder.MatchString(h.ForwardTo) {
				if _, e := parseForwardTo(h.ForwardTo); e != nil {
					return d.Errf("modulus_webhook: %v", e)
				}
			}
		case "forward_timeout":
			h.ForwardTimeout, err = line.duration(false)
		case "sign_secret":
			h.SignSecret, err = line.secret()
		case "spool":
			if h.Spool, err = line.one(); err == nil && strings.Contains(h.Spool, "://") {
				err = redisOption(d, opt, h.Spool, webhookSpoolSyntax)
			}
		case "store":
			if h.Store, err = line.one(); err == nil {
				err = redisOption(d, opt, h.Store, webhookStoreSyntax)
			}
		case "min_replicas":
			minLine = line.at()
			h.MinReplicas, err = line.integer(0, maxMinReplicas)
		case "min_replicas_timeout":
			minLine = line.at()
			var v caddy.Duration
			if v, err = line.duration(false); err == nil {
				h.MinReplicasTimeout = v
				if e := checkMinReplicas(1, time.Duration(v), "redis://"); e != nil {
					return d.Errf("modulus_webhook: %v", e)
				}
			}
		case "dedupe_window":
			h.DedupeWindow, err = line.duration(false)
		case "redeliver_for":
			h.RedeliverFor, err = line.duration(false)
		case "retry_backoff":
			if len(line.args) != 2 {
				return d.Errf("modulus_webhook: retry_backoff takes a base and a maximum duration")
			}
			base, err1 := caddy.ParseDuration(line.args[0])
			maxd, err2 := caddy.ParseDuration(line.args[1])
			if err1 != nil || err2 != nil || base <= 0 || maxd < base {
				return d.Errf("modulus_webhook: retry_backoff needs two positive durations, the second at least the first")
			}
			h.RetryBase, h.RetryMax = caddy.Duration(base), caddy.Duration(maxd)
		case "max_body":
			var v string
			if v, err = line.one(); err == nil {
				n, perr := humanize.ParseBytes(v)
				if perr != nil || n == 0 || n > 16<<20 {
					return d.Errf("modulus_webhook: max_body must be a size between 1B and 16MB, such as 64KB")
				}
				h.MaxBody = int64(n)
			}
		case "action_fields":
			h.ActionFields, err = line.some()
		case "reference_fields":
			h.ReferenceFields, err = line.some()
		default:
			return d.Errf("modulus_webhook: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	if err := checkMinReplicas(h.MinReplicas, time.Duration(h.MinReplicasTimeout), h.Spool); err != nil && minLine != "" {
		return fmt.Errorf("modulus_webhook: %w, at %s", err, minLine)
	}
	return nil
}

const (
	redisForms         = "redis://host:port/db, redis-cluster://host:port,host:port,... or redis-sentinel://host:port,host:port/MASTERNAME[/db] (rediss://, rediss-cluster://, rediss-sentinel:// for TLS)"
	webhookSpoolSyntax = "modulus_webhook: spool must be a file path or " + redisForms
	webhookStoreSyntax = "modulus_webhook: store must be " + redisForms + "; de-duplication is kept in the spool otherwise"
)

// redisOption checks a Redis URL option: its syntax, and a password only
// as a placeholder.
func redisOption(d *caddyfile.Dispenser, opt, v, syntax string) error {
	if err := checkRedisSpec(opt, v, syntax); err != nil {
		return d.Errf("modulus_webhook: %s", strings.TrimPrefix(err.Error(), "modulus_webhook: "))
	}
	if pw := redisPassword(v); pw != "" && !secretPlaceholder.MatchString(pw) {
		return d.Errf("modulus_webhook: the Redis password in %s must be a {env.NAME} or {file.PATH} placeholder", opt)
	}
	return nil
}

func parseWebhookCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	w := new(Webhook)
	err := w.UnmarshalCaddyfile(h.Dispenser)
	return w, err
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Webhook)(nil)
