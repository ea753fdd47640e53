package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
)

// maxWebhookBody is the largest max_body: a webhook is a few hundred bytes.
const maxWebhookBody = 16 << 20

// webhookRules are modulus_webhook's option rules (see rules.go):
// UnmarshalCaddyfile applies an option's rule as it reads it, Provision
// applies them all. Values with placeholders are checked once resolved, at
// provision.
var webhookRules = []optionRule[*Webhook]{
	{"decryption_key", func(h *Webhook) error {
		for i, k := range h.DecryptionKeys {
			if err := checkSecretForm(fmt.Sprintf("decryption_key[%d]", i+1), k, false); err != nil {
				return err
			}
		}
		return nil
	}},
	{"key_encoding", func(h *Webhook) error { return checkKeyEncoding(h.KeyEncoding) }},
	{"allow_ips", func(h *Webhook) error {
		if len(h.AllowIPs) == 0 || anyPlaceholder.MatchString(strings.Join(h.AllowIPs, " ")) {
			return nil
		}
		_, err := policy.ParseIPAllowlist(h.AllowIPs)
		return err
	}},
	{"forward_to", func(h *Webhook) error {
		if h.ForwardTo == "" || anyPlaceholder.MatchString(h.ForwardTo) {
			return nil
		}
		_, err := parseForwardTo(h.ForwardTo)
		return err
	}},
	{"forward_timeout", func(h *Webhook) error { return checkPositiveDuration("forward_timeout", h.ForwardTimeout) }},
	{"sign_secret", func(h *Webhook) error { return checkSignSecrets(h.SignSecret, h.SignSecrets) }},
	{"spool", func(h *Webhook) error {
		if !strings.Contains(h.Spool, "://") {
			return nil
		}
		return checkRedisOption("spool", h.Spool, webhookSpoolSyntax)
	}},
	{"store", func(h *Webhook) error {
		if h.Store == "" {
			return nil
		}
		return checkRedisOption("store", h.Store, webhookStoreSyntax)
	}},
	{"dedupe_window", func(h *Webhook) error { return checkPositiveDuration("dedupe_window", h.DedupeWindow) }},
	{"redeliver_for", func(h *Webhook) error { return checkPositiveDuration("redeliver_for", h.RedeliverFor) }},
	{"retry_backoff", func(h *Webhook) error {
		return inbound.CheckRetryBackoff(time.Duration(h.RetryBase), time.Duration(h.RetryMax))
	}},
	{"max_body", func(h *Webhook) error {
		if h.MaxBody < 0 || h.MaxBody > maxWebhookBody {
			return errMaxBody
		}
		return nil
	}},
	{"rate_limit", func(h *Webhook) error { return checkRateLimit("rate_limit", h.RateLimit) }},
	{"rate_limit_per_ip", func(h *Webhook) error { return checkRateLimit("rate_limit_per_ip", h.RateLimitPerIP) }},
	{"read_timeout", func(h *Webhook) error { return checkReadTimeout(h.ReadTimeout) }},
	{"action_fields", func(h *Webhook) error { return checkNames("action_fields", h.ActionFields) }},
	{"reference_fields", func(h *Webhook) error { return checkNames("reference_fields", h.ReferenceFields) }},
}

var errMaxBody = fmt.Errorf("max_body must be a size from 1B to %s, such as 64KB", humanize.IBytes(maxWebhookBody))

const (
	webhookSpoolSyntax = "spool must be a file path or redis://host:port/db (rediss:// for TLS)"
	webhookStoreSyntax = "store must be redis://host:port/db (rediss:// for TLS); de-duplication is kept in the spool otherwise"
)

// checkRedisOption is the rule of a Redis URL option: its syntax, and a
// password only as a placeholder (an inline one would sit in the config).
func checkRedisOption(opt, v, syntax string) error {
	if err := checkRedisSpec(v, syntax); err != nil {
		return err
	}
	return checkRedisPassword(opt, v, "")
}
