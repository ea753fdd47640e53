package caddymodule

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/sandbox"
)

// sandboxRules are modulus_sandbox's option rules (see rules.go):
// UnmarshalCaddyfile applies an option's rule as it reads it, Provision
// applies them all.
var sandboxRules = []optionRule[*Sandbox]{
	{"secret_key", func(s *Sandbox) error { return checkSecretForm("secret_key", s.SecretKey, true) }},
	{"encryption_key", func(s *Sandbox) error { return checkSecretForm("encryption_key", s.EncryptionKey, true) }},
	{"inbox_sign_secret", func(s *Sandbox) error {
		return checkSecretForm("inbox_sign_secret", s.InboxSignSecret, true)
	}},
	{"key_encoding", func(s *Sandbox) error { return checkKeyEncoding("key_encoding", s.KeyEncoding) }},
	{"activation_codes", func(s *Sandbox) error {
		// The simulator takes literal codes only: a placeholder is no code.
		pol := policy.Default()
		for i, code := range s.ActivationCodes {
			if err := pol.CheckActivationCode(listName("activation_codes", i), code); err != nil {
				return err
			}
		}
		return nil
	}},
	{"rate_limit", func(s *Sandbox) error { return checkRateLimit("rate_limit", s.RateLimit) }},
	{"retry_intervals", func(s *Sandbox) error {
		for _, d := range s.RetryIntervals {
			if d <= 0 {
				return errPositiveDuration("retry_intervals")
			}
		}
		return nil
	}},
	{"latency", func(s *Sandbox) error { return checkNonNegativeDuration("latency", &s.Latency) }},
	{"error_rate", func(s *Sandbox) error {
		if !(s.ErrorRate >= 0 && s.ErrorRate <= 1) { // also refuses NaN
			return fmt.Errorf("error_rate: %w", errRate)
		}
		return nil
	}},
	{"callbacks", func(s *Sandbox) error {
		for _, u := range s.Callbacks {
			if err := sandbox.CheckCallbackURL(u); err != nil {
				return fmt.Errorf("callbacks: %w", err)
			}
		}
		return nil
	}},
	{"webhook_source", func(s *Sandbox) error {
		if s.WebhookSource == "" {
			return nil
		}
		if a, err := netip.ParseAddr(s.WebhookSource); err != nil || a.Zone() != "" {
			return errors.New("webhook_source must be an IP address such as 127.0.0.2")
		}
		return nil
	}},
}
