package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/qrphgate/qrphgate/proxy/inbound"
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
//		sign_secret      <{env.NAME}|{file.PATH}>   # optional; repeatable: each signs (a rotation)
//		spool            <path>|<redis-url>         # default <data dir>/qrphgate/webhooks.spool
//		store            <redis-url>                # optional: de-duplication shared by replicas
//		min_replicas     <n>                        # Redis spool: acknowledge once n replicas have the event; default 0
//		min_replicas_timeout <duration>             # how long to wait for them (then 503); default 1s, at most 5s
//		dedupe_window    <duration>                 # default 72h
//		redeliver_for    <duration>                 # default 72h
//		retry_backoff    <base> <max>               # default 2s 15m
//		delivered_retention <duration>              # default 7d; 0 removes delivered events at once
//		dead_letter_retention <duration>            # default 30d; 0 keeps dead letters until replayed
//		max_body         <size>                     # default 64KB
//		rate_limit       <N>/<duration>             # default 10000/1m, all addresses together
//		rate_limit_per_ip <N>/<duration>            # default 5000/1m, each address (IPv6: each /64)
//		read_timeout     <duration>                 # default 10s, for the body to arrive
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
	repeatable := []string{"decryption_key", "allow_ips", "activation_codes", "sign_secret"}
	// min_replicas needs a Redis spool, and min_replicas_timeout needs
	// min_replicas, either of which may come later: that part of the rule
	// runs after the block, at the first of the two lines.
	var minReplicasAt *optionLine
	err := eachOption(d, "modulus_webhook", repeatable, func(opt string) error {
		line, err := readOption(d, "modulus_webhook")
		if err != nil {
			return err
		}
		var values []string
		switch opt {
		case "decryption_key":
			var v string
			if v, err = line.one(); err == nil {
				h.DecryptionKeys = append(h.DecryptionKeys, v)
			}
		case "key_encoding":
			h.KeyEncoding, err = line.one()
		case "allow_ips":
			// Each line is checked here, for its file and line; the whole
			// list (any alone) again at provision.
			if values, err = line.some(); err == nil {
				h.AllowIPs = append(h.AllowIPs, values...)
				err = line.fail(checkRule(webhookRules, &Webhook{AllowIPs: values}, opt))
			}
			return err
		case "activation_codes":
			values, err = line.some()
			h.ActivationCodes = append(h.ActivationCodes, values...)
		case "forward_to":
			h.ForwardTo, err = line.one()
		case "forward_timeout":
			h.ForwardTimeout, err = line.duration()
		case "sign_secret":
			var v string
			if v, err = line.one(); err == nil {
				h.addSignSecret(v)
			}
		case "spool":
			h.Spool, err = line.one()
		case "store":
			h.Store, err = line.one()
		case "dedupe_window":
			h.DedupeWindow, err = line.duration()
		case "redeliver_for":
			h.RedeliverFor, err = line.duration()
		case "delivered_retention", "dead_letter_retention":
			var dur caddy.Duration
			if dur, err = line.durationOrZero(); err == nil {
				if opt == "delivered_retention" {
					h.DeliveredRetention = &dur
				} else {
					h.DeadLetterRetention = &dur
				}
			}
		case "retry_backoff":
			if len(line.args) != 2 {
				return line.errf("takes a base and a maximum duration")
			}
			base, err1 := caddy.ParseDuration(line.args[0])
			maxd, err2 := caddy.ParseDuration(line.args[1])
			if err1 != nil || err2 != nil || base <= 0 || maxd <= 0 {
				return line.fail(inbound.CheckRetryBackoff(-1, -1))
			}
			h.RetryBase, h.RetryMax = caddy.Duration(base), caddy.Duration(maxd)
		case "max_body":
			var v string
			if v, err = line.one(); err == nil {
				n, perr := humanize.ParseBytes(v)
				if perr != nil || n == 0 || n > maxWebhookBody {
					return line.fail(errMaxBody)
				}
				h.MaxBody = int64(n)
			}
		case "rate_limit":
			h.RateLimit, err = line.one()
		case "rate_limit_per_ip":
			h.RateLimitPerIP, err = line.one()
		case "read_timeout":
			h.ReadTimeout, err = line.duration()
		case "action_fields":
			h.ActionFields, err = line.some()
		case "reference_fields":
			h.ReferenceFields, err = line.some()
		case "min_replicas":
			if h.MinReplicas, err = line.integer(0, maxMinReplicas); err == nil {
				minReplicasAt = &line
			}
			return err
		case "min_replicas_timeout":
			h.MinReplicasTimeout, err = line.duration()
			if err == nil {
				err = line.fail(checkMinReplicas(1, time.Duration(h.MinReplicasTimeout), "redis://"))
			}
			if minReplicasAt == nil {
				minReplicasAt = &line
			}
			return err
		default:
			return unknownOption(d, "modulus_webhook", opt)
		}
		if err != nil {
			return err
		}
		return line.fail(checkRule(webhookRules, h, opt))
	})
	if err != nil || minReplicasAt == nil {
		return err
	}
	return minReplicasAt.failAt(checkRule(webhookRules, h, "min_replicas"))
}

func parseWebhookCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	w := new(Webhook)
	err := w.UnmarshalCaddyfile(h.Dispenser)
	return w, err
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Webhook)(nil)
