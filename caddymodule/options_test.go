package caddymodule

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// caddyfileRuleMessage strips what the Caddyfile adds around a rule's
// error: the adapter's prefix, the module name and the position.
var caddyfileRuleMessage = regexp.MustCompile(`^parsing caddyfile tokens for '[a-z_]+': (modulus(?:_[a-z]+)?): (.*), at Caddyfile:\d+`)

// optionRuleCase is one bad value, written as a Caddyfile line of the
// directive ("modulus": the global options block) and as the module's JSON
// members, and the error both must give. The last line of line is the
// option whose rule refuses it (earlier lines set what the rule depends on).
type optionRuleCase struct {
	name, directive, line, json, want string
}

// option is the option the case's rule belongs to.
func (c optionRuleCase) option() string {
	lines := strings.Split(c.line, "\n")
	return strings.Fields(lines[len(lines)-1])[0]
}

// optionRuleCases are the rows of TestOptionRulesSameInJSONAndCaddyfile:
// at least one for every option that has a rule (TestOptionRulesCovered).
func optionRuleCases() []optionRuleCase {
	const apiBase = `"environment":"sandbox","secret_key":"{env.MODULUS_SECRET_KEY}","encryption_key":"{env.MODULUS_ENCRYPTION_KEY}","activation_code":"TEST-0000-0000-0001",`
	const apiNoMerchant = `"environment":"sandbox","secret_key":"{env.MODULUS_SECRET_KEY}","encryption_key":"{env.MODULUS_ENCRYPTION_KEY}",`
	const webhookBase = `"decryption_keys":["{env.MODULUS_ENCRYPTION_KEY}"],"allow_ips":["any"],"forward_to":"http://127.0.0.1:1/x",`
	const sandboxBase = `"secret_key":"sk_test_FAKE","encryption_key":"FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE",`
	return []optionRuleCase{
		{"max_body above 16 MB", "modulus_webhook", "max_body 17MB", webhookBase + `"max_body":17825792`, "max_body must be a size from 1B to 16 MiB"},
		{"retry_backoff maximum below base", "modulus_webhook", "retry_backoff 10s 1s", webhookBase + `"retry_base":10000000000,"retry_max":1000000000`, "retry_backoff needs two positive durations, the maximum (1s) at least the base (10s)"},
		{"retry_max below the default base", "modulus_webhook", "retry_backoff 2s 1s", webhookBase + `"retry_max":1000000000`, "the maximum (1s) at least the base (2s)"},
		{"negative forward_timeout", "modulus_webhook", "forward_timeout -1s", webhookBase + `"forward_timeout":-1000000000`, "forward_timeout must be a positive duration"},
		{"inline sign_secret", "modulus_webhook", "sign_secret whsec_FAKEFAKE", webhookBase + `"sign_secret":"whsec_FAKEFAKE"`, "sign_secret must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline second sign_secret", "modulus_webhook", "sign_secret {env.QRPHGATE_SIGNING_SECRET}\n\t\tsign_secret whsec_FAKEFAKE", webhookBase + `"sign_secrets":["{env.QRPHGATE_SIGNING_SECRET}","whsec_FAKEFAKE"]`, "sign_secret[2] must be a {env.NAME} or {file.PATH} placeholder"},
		{"forward_to without a scheme", "modulus_webhook", "forward_to 127.0.0.1:3000/x", strings.Replace(webhookBase, `"forward_to":"http://127.0.0.1:1/x",`, "", 1) + `"forward_to":"127.0.0.1:3000/x"`, "forward_to must be an absolute http:// or https:// URL"},
		{"spool with an inline Redis password", "modulus_webhook", "spool redis://:hunter2@127.0.0.1:6379/0", webhookBase + `"spool":"redis://:hunter2@127.0.0.1:6379/0"`, "spool: give the Redis password as {env.NAME} or {file.PATH}"},
		{"bad webhook rate_limit", "modulus_webhook", "rate_limit 100/0s", webhookBase + `"rate_limit":"100/0s"`, "rate_limit: rate limit \"100/0s\": period must be a positive duration"},
		{"bad rate_limit_per_ip", "modulus_webhook", "rate_limit_per_ip many", webhookBase + `"rate_limit_per_ip":"many"`, "rate_limit_per_ip: rate limit \"many\": want N/duration"},
		{"read_timeout above 5m", "modulus_webhook", "read_timeout 6m", webhookBase + `"read_timeout":360000000000`, "read_timeout must be a positive duration up to 5m"},
		{"bad merchant_rate_limit", "modulus_api", "merchant_rate_limit 0/1m", apiBase + `"merchant_rate_limit":"0/1m"`, "merchant_rate_limit: rate limit \"0/1m\": request count must be a positive integer"},
		{"health_interval below a second", "modulus_health", "health_interval 500ms", `"health_interval":500000000`, "health_interval must be a duration of at least 1s"},
		{"check_interval below a second", "modulus_health", "check_interval 10ms", `"check_interval":10000000`, "check_interval must be a duration of at least 1s"},
		{"check_timeout above a minute", "modulus_health", "check_timeout 2m", `"check_timeout":120000000000`, "check_timeout must be a positive duration up to 1m"},
		{"negative cert_warn", "modulus_health", "cert_warn -1s", `"cert_warn":-1000000000`, "cert_warn must be a positive duration"},
		{"empty cert name", "modulus_health", `cert_names ""`, `"cert_names":[""]`, "cert_names must not contain an empty name"},
		{"min_replicas with a file spool", "modulus_webhook", "min_replicas 1", webhookBase + `"min_replicas":1`, "min_replicas needs a Redis spool"},
		{"min_replicas_timeout above 5s", "modulus_webhook", "min_replicas_timeout 6s", webhookBase + `"min_replicas":1,"spool":"redis://127.0.0.1:1/0","min_replicas_timeout":6000000000`, "min_replicas_timeout must be a positive duration of at most 5s"},
		{"max_queue above its range", "modulus_api", "max_queue 2000000", apiBase + `"max_queue":2000000`, "max_queue must be a whole number from 1 to 1048576"},
		{"negative max_queue", "modulus_api", "max_queue -1", apiBase + `"max_queue":-1`, "max_queue must be a whole number from 1 to 1048576"},
		{"auth_failures above its range", "modulus_api", "auth_failures 101", apiBase + `"auth_failures":101`, "auth_failures must be a whole number from 1 to 100"},
		{"retries above its range", "modulus_api", "retries 11", apiBase + `"retries":11`, "retries must be a whole number from 0 to 10"},
		{"negative max_wait", "modulus_api", "max_wait -1s", apiBase + `"max_wait":-1000000000`, "max_wait must be zero or a positive duration"},
		{"breaker negative window", "modulus_api", "circuit_breaker window -1s", apiBase + `"circuit_breaker":{"window":-1000000000}`, "circuit_breaker window must be a positive duration"},
		{"breaker negative open", "modulus_api", "circuit_breaker failures 3 open -1m", apiBase + `"circuit_breaker":{"failures":3,"open":-60000000000}`, "circuit_breaker open must be a positive duration"},
		{"breaker probes above range", "modulus_api", "circuit_breaker probes 1001", apiBase + `"circuit_breaker":{"probes":1001}`, "circuit_breaker probes must be a whole number from 1 to 1000"},
		{"breaker failures above range", "modulus_api", "circuit_breaker failures 1001", apiBase + `"circuit_breaker":{"failures":1001}`, "circuit_breaker failures must be a whole number from 1 to 1000"},
		{"bad webhooks_payload", "modulus_api", "webhooks_payload token", apiBase + `"webhooks_payload":"token"`, "webhooks_payload must be plain or jwe"},
		{"bad rate_limit", "modulus_api", "rate_limit 100", apiBase + `"rate_limit":"100"`, "rate_limit: rate limit \"100\""},
		{"bad store", "modulus_api", "store postgres://db/x", apiBase + `"store":"postgres://db/x"`, "store must be memory, file:///absolute/path, redis://"},
		{"http qr_url off loopback", "modulus_api", "qr_url http://qrph.example.com", apiBase + `"qr_url":"http://qrph.example.com"`, "qr_url must use https"},
		{"sandbox error_rate above 1", "modulus_sandbox", "error_rate 1.5", sandboxBase + `"error_rate":1.5`, "error_rate: want a fraction between 0 and 1"},
		{"sandbox webhook_source", "modulus_sandbox", "webhook_source localhost", sandboxBase + `"webhook_source":"localhost"`, "webhook_source must be an IP address"},
		{"webhook activation code with a space", "modulus_webhook", `activation_codes MERCHANT_1 "has space"`, webhookBase + `"activation_codes":["MERCHANT_1","has space"]`, "activation_codes[2]: each code must be 1 to 128 visible ASCII characters"},
		{"inline activation_code in production", "modulus_api", "environment production\n\t\tactivation_code TEST-0000-0000-0001", apiBase + `"environment":"production"`, "with environment production, activation_code must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline merchant in production", "modulus_api", "environment production\n\t\tmerchants {env.M1} TEST-0000-0000-0002", apiNoMerchant + `"environment":"production","merchants":["{env.M1}","TEST-0000-0000-0002"]`, "with environment production, merchants[2] must be a {env.NAME} or {file.PATH} placeholder"},
		{"sandbox activation code", "modulus_sandbox", "activation_codes MERCHANT_1", sandboxBase + `"activation_codes":["MERCHANT_1"]`, "activation_codes[1] must look like XXXX-XXXX-XXXX-XXXX"},
		{"bad ledger", "modulus", "ledger postgres://db/x", `"ledger":"postgres://db/x"`, "ledger must be memory, file:///absolute/path, redis://host:port/db, redis-cluster://"},
		{"relative ledger file", "modulus", "ledger file://ledger.db", `"ledger":"file://ledger.db"`, "ledger: file:// takes an absolute file path"},
		{"ledger with an inline Redis password", "modulus", "ledger redis://:hunter2@127.0.0.1:6379/0", `"ledger":"redis://:hunter2@127.0.0.1:6379/0"`, "ledger: give the Redis password as {env.NAME} or {file.PATH}"},
		{"ledger_retention under an hour", "modulus", "ledger_retention 30m", `"ledger_retention":1800000000000`, "ledger_retention must be a duration of at least 1h"},
		{"negative expiry_grace", "modulus", "expiry_grace -1s", `"expiry_grace":-1000000000`, "expiry_grace must be zero or a positive duration"},
		{"bad expiry_events", "modulus", "expiry_events yes", `"expiry_events":"yes"`, "expiry_events must be on or off"},
		{"inline at_rest_key", "modulus", "at_rest_key FAKE-at-rest-key-not-a-placeholder", `"at_rest_keys":["FAKE-at-rest-key-not-a-placeholder"]`, "at_rest_key[1] must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline second at_rest_key", "modulus", "at_rest_key {env.QRPHGATE_AT_REST_KEY}\n\t\tat_rest_key FAKE-old-key", `"at_rest_keys":["{env.QRPHGATE_AT_REST_KEY}","FAKE-old-key"]`, "at_rest_key[2] must be a {env.NAME} or {file.PATH} placeholder"},
		{"bad at_rest_key_encoding", "modulus", "at_rest_key_encoding base32", `"at_rest_key_encoding":"base32"`, "at_rest_key_encoding: unknown key encoding \"base32\""},
		{"relative audit_log", "modulus", "audit_log audit.log", `"audit_log":"audit.log"`, "audit_log must be an absolute file path"},
		{"negative delivered_retention", "modulus_webhook", "delivered_retention -1s", webhookBase + `"delivered_retention":-1000000000`, "delivered_retention must be zero or a positive duration"},
		{"negative dead_letter_retention", "modulus_webhook", "dead_letter_retention -1h", webhookBase + `"dead_letter_retention":-3600000000000`, "dead_letter_retention must be zero or a positive duration"},

		// modulus_api.
		{"unknown environment", "modulus_api", "environment staging", apiBase + `"environment":"staging"`, "environment must be sandbox or production"},
		{"inline secret_key", "modulus_api", "secret_key sk_test_FAKE-inline", apiBase + `"secret_key":"sk_test_FAKE-inline"`, "secret_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"inline encryption_key", "modulus_api", "encryption_key FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE", apiBase + `"encryption_key":"FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE"`, "encryption_key must be a {env.NAME} or {file.PATH} placeholder"},
		{"bad api key_encoding", "modulus_api", "key_encoding base32", apiBase + `"key_encoding":"base32"`, "key_encoding: unknown key encoding \"base32\""},
		{"http webhooks_url off loopback", "modulus_api", "webhooks_url http://webhooks.example.com", apiBase + `"webhooks_url":"http://webhooks.example.com"`, "webhooks_url must use https"},
		{"negative timeout", "modulus_api", "timeout -1s", apiBase + `"timeout":-1000000000`, "timeout must be a positive duration"},

		// modulus_webhook.
		{"inline decryption_key", "modulus_webhook", "decryption_key FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE", webhookBase + `"decryption_keys":["FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE"]`, "decryption_key[1] must be a {env.NAME} or {file.PATH} placeholder"},
		{"bad webhook key_encoding", "modulus_webhook", "key_encoding base32", webhookBase + `"key_encoding":"base32"`, "key_encoding: unknown key encoding \"base32\""},
		{"bad allow_ips", "modulus_webhook", "allow_ips 203.0.113.0/33", webhookBase + `"allow_ips":["203.0.113.0/33"]`, "is not an IP address or CIDR"},
		{"bad webhook store", "modulus_webhook", "store postgres://db/x", webhookBase + `"store":"postgres://db/x"`, "store must be redis://host:port/db"},
		{"negative dedupe_window", "modulus_webhook", "dedupe_window -1s", webhookBase + `"dedupe_window":-1000000000`, "dedupe_window must be a positive duration"},
		{"negative redeliver_for", "modulus_webhook", "redeliver_for -1h", webhookBase + `"redeliver_for":-3600000000000`, "redeliver_for must be a positive duration"},
		{"empty action field", "modulus_webhook", `action_fields action ""`, webhookBase + `"action_fields":["action",""]`, "action_fields must not contain an empty name"},
		{"empty reference field", "modulus_webhook", `reference_fields ""`, webhookBase + `"reference_fields":[""]`, "reference_fields must not contain an empty name"},

		// modulus_sandbox.
		{"sandbox secret_key of two parts", "modulus_sandbox", "secret_key sk_test_{env.X}", `"secret_key":"sk_test_{env.X}","encryption_key":"FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE"`, "secret_key must be a literal or a single {env.NAME} or {file.PATH} placeholder"},
		{"sandbox encryption_key of two parts", "modulus_sandbox", "encryption_key {env.X}{env.Y}", `"secret_key":"sk_test_FAKE","encryption_key":"{env.X}{env.Y}"`, "encryption_key must be a literal or a single {env.NAME} or {file.PATH} placeholder"},
		{"sandbox inbox_sign_secret of two parts", "modulus_sandbox", "inbox_sign_secret whsec_{env.X}", sandboxBase + `"inbox_sign_secret":"whsec_{env.X}"`, "inbox_sign_secret must be a literal or a single {env.NAME} or {file.PATH} placeholder"},
		{"bad sandbox key_encoding", "modulus_sandbox", "key_encoding base32", sandboxBase + `"key_encoding":"base32"`, "key_encoding: unknown key encoding \"base32\""},
		{"bad sandbox rate_limit", "modulus_sandbox", "rate_limit 0/1m", sandboxBase + `"rate_limit":"0/1m"`, "rate_limit: rate limit \"0/1m\": request count must be a positive integer"},
		{"negative retry interval", "modulus_sandbox", "retry_intervals 1s -1s", sandboxBase + `"retry_intervals":[1000000000,-1000000000]`, "retry_intervals must be a positive duration"},
		{"negative latency", "modulus_sandbox", "latency -1s", sandboxBase + `"latency":-1000000000`, "latency must be zero or a positive duration"},
		{"ftp callback", "modulus_sandbox", "callbacks ftp://app.example/hook", sandboxBase + `"callbacks":["ftp://app.example/hook"]`, "callbacks: "},
	}
}

// TestOptionRulesSameInJSONAndCaddyfile feeds the same bad value through a
// Caddyfile and through a JSON config and expects the same error: each
// option's rule lives in one function, which the parser applies (for the
// file and line) and Provision applies again (for JSON configs).
func TestOptionRulesSameInJSONAndCaddyfile(t *testing.T) {
	setFakeEnv(t)
	for _, tc := range optionRuleCases() {
		t.Run(tc.name, func(t *testing.T) {
			src := "http://127.0.0.1:2090 {\n\t" + tc.directive + " {\n\t\t" + tc.line + "\n\t}\n}\n"
			if tc.directive == "modulus" { // the global options block
				src = "{\n\tmodulus {\n\t\t" + tc.line + "\n\t}\n}\n\nhttp://127.0.0.1:9180 {\n\tmodulus_metrics\n}\n"
			}
			msg := adaptErr(t, src)
			m := caddyfileRuleMessage.FindStringSubmatch(msg)
			if m == nil || m[1] != tc.directive {
				t.Fatalf("Caddyfile error %q lacks the module or the position", msg)
			}
			fromCaddyfile := m[2]

			mod := map[string]caddy.Provisioner{"modulus_api": new(API), "modulus_webhook": new(Webhook), "modulus_sandbox": new(Sandbox), "modulus": new(App), "modulus_health": new(Health)}[tc.directive]
			if err := json.Unmarshal([]byte("{"+tc.json+"}"), mod); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := mod.Provision(ctx)
			if c, ok := mod.(caddy.CleanerUpper); ok {
				_ = c.Cleanup()
			}
			if err == nil {
				t.Fatalf("the JSON config provisioned; the Caddyfile said %q", fromCaddyfile)
			}
			if err.Error() != fromCaddyfile {
				t.Fatalf("JSON and Caddyfile disagree:\n json:      %q\n caddyfile: %q", err, fromCaddyfile)
			}
			if !strings.Contains(fromCaddyfile, tc.want) {
				t.Fatalf("error %q lacks %q", fromCaddyfile, tc.want)
			}
		})
	}
}

// TestOptionRulesCovered: every option with a rule (the rules tables of
// the five modules) has a row in optionRuleCases, so no rule can differ
// between JSON and the Caddyfile unseen.
func TestOptionRulesCovered(t *testing.T) {
	rules := map[string][]string{
		"modulus_api":     ruleOptions(apiRules),
		"modulus_webhook": ruleOptions(webhookRules),
		"modulus_sandbox": ruleOptions(sandboxRules),
		"modulus_health":  ruleOptions(healthRules),
		"modulus":         ruleOptions(appRules),
	}
	rows := map[string]bool{}
	for _, c := range optionRuleCases() {
		if _, ok := rules[c.directive]; !ok {
			t.Errorf("%s: unknown directive %q", c.name, c.directive)
		}
		rows[c.directive+" "+c.option()] = true
	}
	n := 0
	for directive, opts := range rules {
		for _, opt := range opts {
			n++
			if !rows[directive+" "+opt] {
				t.Errorf("%s %s has a rule but no row in optionRuleCases: add one", directive, opt)
			}
		}
	}
	if n < 60 {
		t.Fatalf("found only %d options with rules: the test lost its way", n)
	}
}

func ruleOptions[M any](rules []optionRule[M]) []string {
	opts := make([]string, len(rules))
	for i, r := range rules {
		opts[i] = r.opt
	}
	return opts
}
