package caddymodule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy/inbound"
	"github.com/qrphgate/qrphgate/store"
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
			if err := checkSecretForm(listName("decryption_key", i), k, false); err != nil {
				return err
			}
		}
		return nil
	}},
	{"key_encoding", func(h *Webhook) error { return checkKeyEncoding("key_encoding", h.KeyEncoding) }},
	{"allow_ips", func(h *Webhook) error {
		if len(h.AllowIPs) == 0 || anyPlaceholder.MatchString(strings.Join(h.AllowIPs, " ")) {
			return nil
		}
		_, err := policy.ParseIPAllowlist(h.AllowIPs)
		return err
	}},
	{"activation_codes", func(h *Webhook) error {
		return checkListed("activation_codes", h.ActivationCodes, checkHeaderCode)
	}},
	{"forward_to", func(h *Webhook) error {
		if h.ForwardTo == "" || anyPlaceholder.MatchString(h.ForwardTo) {
			return nil
		}
		_, err := parseForwardTo(h.ForwardTo)
		return err
	}},
	{"forward_timeout", func(h *Webhook) error { return checkPositiveDuration("forward_timeout", h.ForwardTimeout) }},
	{"delivered_retention", func(h *Webhook) error {
		return checkNonNegativeDuration("delivered_retention", h.DeliveredRetention)
	}},
	{"dead_letter_retention", func(h *Webhook) error {
		return checkNonNegativeDuration("dead_letter_retention", h.DeadLetterRetention)
	}},
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
	{"min_replicas", func(h *Webhook) error {
		return checkMinReplicas(h.MinReplicas, time.Duration(h.MinReplicasTimeout), h.Spool)
	}},
	{"action_fields", func(h *Webhook) error { return checkNames("action_fields", h.ActionFields) }},
	{"reference_fields", func(h *Webhook) error { return checkNames("reference_fields", h.ReferenceFields) }},
}

// checkHeaderCode is the rule of one activation_codes value, literal or
// resolved: a value the activation-code header can carry.
func checkHeaderCode(name, code string) error {
	if !inbound.ValidActivationCodeHeader(code) {
		return fmt.Errorf("%s: each code must be 1 to 128 visible ASCII characters", name)
	}
	return nil
}

var errMaxBody = fmt.Errorf("max_body must be a size from 1B to %s, such as 64KB", humanize.IBytes(maxWebhookBody))

const (
	redisForms         = "redis://host:port/db, redis-cluster://host:port,host:port,... or redis-sentinel://host:port,host:port/MASTERNAME[/db] (rediss://, rediss-cluster://, rediss-sentinel:// for TLS)"
	webhookSpoolSyntax = "spool must be a file path or " + redisForms
	webhookStoreSyntax = "store must be " + redisForms + "; de-duplication is kept in the spool otherwise"
)

// Limits of min_replicas and its timeout.
const (
	maxMinReplicas            = 16
	defaultMinReplicasTimeout = time.Second
	maxMinReplicasTimeout     = 5 * time.Second
)

// checkMinReplicas is the rule of min_replicas and min_replicas_timeout: a
// count the spool can wait for, a timeout well inside the provider's 10 s,
// and a Redis spool (a file spool has no replicas). spool is the spool as
// configured; one that is a placeholder is checked once resolved.
func checkMinReplicas(n int, timeout time.Duration, spool string) error {
	switch {
	case n < 0 || n > maxMinReplicas:
		return errRange("min_replicas", 0, maxMinReplicas)
	case timeout < 0 || timeout > maxMinReplicasTimeout:
		return fmt.Errorf("min_replicas_timeout must be a positive duration of at most %v (the provider gives up on an answer after 10s)", maxMinReplicasTimeout)
	case timeout > 0 && n == 0:
		return errors.New("min_replicas_timeout needs min_replicas")
	case n > 0 && !store.IsRedisURL(spool) && !anyPlaceholder.MatchString(spool):
		return errors.New("min_replicas needs a Redis spool (spool redis://..., redis-cluster://... or redis-sentinel://...): a file spool has no replicas")
	}
	return nil
}

// checkRedisOption is the rule of a Redis URL option: its syntax, and a
// password only as a placeholder (an inline one would sit in the config).
func checkRedisOption(opt, v, syntax string) error {
	if err := checkRedisSpec(opt, v, syntax); err != nil {
		return err
	}
	return checkRedisPassword(opt, v, "")
}
