package caddymodule

import (
	"errors"
	"fmt"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// Limits of modulus_api's numeric options.
const (
	maxQueueLimit     = 1 << 20
	maxRetries        = 10
	maxAuthFailures   = 100
	maxBreakerSetting = 1000
)

// apiRules are modulus_api's option rules (see rules.go): UnmarshalCaddyfile
// applies an option's rule as it reads it, Provision applies them all.
var apiRules = []optionRule[*API]{
	{"environment", func(a *API) error {
		if a.Environment == "" {
			return fmt.Errorf("environment is required (%s)", orList([]string{policy.Sandbox, policy.Production}))
		}
		return checkOneOf("environment", a.Environment, policy.Sandbox, policy.Production)
	}},
	{"secret_key", func(a *API) error { return checkSecretForm("secret_key", a.SecretKey, false) }},
	{"encryption_key", func(a *API) error { return checkSecretForm("encryption_key", a.EncryptionKey, false) }},
	{"key_encoding", func(a *API) error { return checkKeyEncoding("key_encoding", a.KeyEncoding) }},
	{"activation_code", func(a *API) error {
		if a.ActivationCode == "" && len(a.Merchants) == 0 {
			return errors.New("activation_code (or merchants) is required")
		}
		return a.checkMerchantForm("activation_code", a.ActivationCode)
	}},
	{"merchants", func(a *API) error {
		for i, m := range a.Merchants {
			if err := a.checkMerchantForm(listName("merchants", i), m); err != nil {
				return err
			}
		}
		return nil
	}},
	{"qr_url", func(a *API) error { return checkUpstreamURL("qr_url", a.QRURL) }},
	{"webhooks_url", func(a *API) error { return checkUpstreamURL("webhooks_url", a.WebhooksURL) }},
	{"webhooks_payload", func(a *API) error {
		return checkOneOf("webhooks_payload", a.WebhooksPayload, outbound.WebhooksPayloadPlain, outbound.WebhooksPayloadJWE)
	}},
	{"rate_limit", func(a *API) error { return checkRateLimit("rate_limit", a.RateLimit) }},
	{"merchant_rate_limit", func(a *API) error { return checkRateLimit("merchant_rate_limit", a.MerchantRateLimit) }},
	{"max_wait", func(a *API) error { return checkNonNegativeDuration("max_wait", a.MaxWait) }},
	{"max_queue", func(a *API) error {
		if a.MaxQueue == 0 {
			return nil
		}
		return checkRange("max_queue", a.MaxQueue, 1, maxQueueLimit)
	}},
	{"timeout", func(a *API) error { return checkPositiveDuration("timeout", a.Timeout) }},
	{"retries", func(a *API) error {
		if a.Retries == nil {
			return nil
		}
		return checkRange("retries", *a.Retries, 0, maxRetries)
	}},
	{"auth_failures", func(a *API) error {
		if a.AuthFailures == 0 {
			return nil
		}
		return checkRange("auth_failures", a.AuthFailures, 1, maxAuthFailures)
	}},
	{"circuit_breaker", func(a *API) error { return a.CircuitBreaker.check() }},
	{"store", func(a *API) error { return checkStoreSpec(a.Store) }},
}

// checkMerchantForm: an activation code may be a literal only in the
// sandbox (it names a real merchant in production, and a literal would be
// printed by `qrphgate adapt`). Before the environment is known (the
// Caddyfile may name it later) a literal passes; Provision checks again.
// The code's format is the policy's (which the policy option may
// override): merchants checks it once the policy is loaded and the value
// resolved.
func (a *API) checkMerchantForm(opt, v string) error {
	if a.Environment != policy.Production {
		return nil
	}
	if err := checkSecretForm(opt, v, false); err != nil {
		return fmt.Errorf("with environment production, %w", err)
	}
	return nil
}

// checkKeyEncoding is the key_encoding rule of every module.
func checkKeyEncoding(opt, v string) error {
	if _, err := crypto.ParseEncoding(v); err != nil {
		return fmt.Errorf("%s: %w", opt, err)
	}
	return nil
}

// checkUpstreamURL: a provider base URL is https (http only to loopback),
// without credentials, query or fragment.
func checkUpstreamURL(opt, v string) error {
	if v == "" {
		return nil
	}
	_, err := policy.CheckUpstreamURL(opt, v)
	return err
}

// checkRateLimit is the rule of every rate-limit option: N/duration.
func checkRateLimit(opt, v string) error {
	if v == "" {
		return nil
	}
	if _, err := policy.ParseRateLimit(v); err != nil {
		return fmt.Errorf("%s: %w", opt, err)
	}
	return nil
}

// check is the circuit_breaker rule, the one check of its four settings:
// failures and probes from 1 to maxBreakerSetting, window and open above
// zero. A zero field is not set and takes the default.
func (b *BreakerConfig) check() error {
	if b == nil {
		return nil
	}
	switch {
	case b.Failures != 0 && (b.Failures < 1 || b.Failures > maxBreakerSetting):
		return errBreakerCount("failures")
	case b.Window < 0:
		return errBreakerDuration("window")
	case b.Open < 0:
		return errBreakerDuration("open")
	case b.Probes != 0 && (b.Probes < 1 || b.Probes > maxBreakerSetting):
		return errBreakerCount("probes")
	}
	return nil
}

func errBreakerCount(setting string) error {
	return errRange("circuit_breaker "+setting, 1, maxBreakerSetting)
}

func errBreakerDuration(setting string) error {
	return errPositiveDuration("circuit_breaker " + setting)
}
