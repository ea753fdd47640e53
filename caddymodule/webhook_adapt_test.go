package caddymodule

import (
	"strings"
	"testing"

	// The golden webhook Caddyfiles put reverse_proxy beside
	// modulus_webhook to show the directive orders itself before it.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func TestWebhookCaddyfileErrors(t *testing.T) {
	wrap := func(body string) string {
		return "https://pay.example.com {\n\tmodulus_webhook {\n" + body + "\t}\n}\n"
	}
	for _, tc := range []struct{ name, src, want, line string }{
		{"argument", "https://pay.example.com {\n\tmodulus_webhook http://x\n}\n", "modulus_webhook takes no arguments, only a block of options", "Caddyfile:2"},
		{"unknown option", wrap("\t\tforward_too http://x\n"), `modulus_webhook: unknown option "forward_too"`, "Caddyfile:3"},
		{"duplicate option", wrap("\t\tforward_to http://a\n\t\tforward_to http://b\n"), `modulus_webhook: option "forward_to" given twice`, "Caddyfile:4"},
		{"literal key", wrap("\t\tdecryption_key TEST-ONLY-fake-key-do-not-use-32\n"), "modulus_webhook: decryption_key[1] must be a {env.NAME} or {file.PATH} placeholder", "Caddyfile:3"},
		{"literal sign secret", wrap("\t\tsign_secret whsec_abc\n"), "modulus_webhook: sign_secret must be a {env.NAME}", "Caddyfile:3"},
		{"key without value", wrap("\t\tdecryption_key\n"), "modulus_webhook: decryption_key takes exactly one value", "Caddyfile:3"},
		{"allow_ips without value", wrap("\t\tallow_ips\n"), "modulus_webhook: allow_ips needs at least one value", "Caddyfile:3"},
		{"bad duration", wrap("\t\tforward_timeout soon\n"), "modulus_webhook: forward_timeout must be a positive duration", "Caddyfile:3"},
		{"negative duration", wrap("\t\tredeliver_for -1h\n"), "modulus_webhook: redeliver_for must be a positive duration", "Caddyfile:3"},
		{"backoff with one value", wrap("\t\tretry_backoff 1s\n"), "modulus_webhook: retry_backoff takes a base and a maximum", "Caddyfile:3"},
		{"backoff max below base", wrap("\t\tretry_backoff 1m 1s\n"), "modulus_webhook: retry_backoff needs two positive durations", "Caddyfile:3"},
		{"bad size", wrap("\t\tmax_body lots\n"), "modulus_webhook: max_body must be a size", "Caddyfile:3"},
		{"huge size", wrap("\t\tmax_body 1GB\n"), "modulus_webhook: max_body must be a size", "Caddyfile:3"},
		{"nested block", wrap("\t\tforward_to http://a {\n\t\t\tx\n\t\t}\n"), "modulus_webhook: forward_to takes no block", "Caddyfile:4"},
		{"store not redis", wrap("\t\tstore memory\n"), "modulus_webhook: store must be redis://host:port/db", "Caddyfile:3"},
		{"store file", wrap("\t\tforward_to http://a\n\t\tstore file:///var/lib/x.db\n"), "modulus_webhook: store must be redis://host:port/db", "Caddyfile:4"},
		{"store twice", wrap("\t\tstore redis://r:6379/0\n\t\tstore redis://r:6379/1\n"), `modulus_webhook: option "store" given twice`, "Caddyfile:4"},
		{"store bad db", wrap("\t\tstore redis://r:6379/zero\n"), "the Redis database in the URL path must be a number", "Caddyfile:3"},
		{"store inline password", wrap("\t\tstore redis://:TEST-ONLY-fake-key-do-not-use-32@r:6379/0\n"), "modulus_webhook: store: give the Redis password as {env.NAME} or {file.PATH}", "Caddyfile:3"},
		{"spool inline password", wrap("\t\tspool rediss://u:TEST-ONLY-fake-key-do-not-use-32@r:6380/0\n"), "modulus_webhook: spool: give the Redis password as {env.NAME} or {file.PATH}", "Caddyfile:3"},
		{"spool other scheme", wrap("\t\tspool s3://bucket/spool\n"), "modulus_webhook: spool must be a file path or redis://", "Caddyfile:3"},
		{"spool cluster bad address", wrap("\t\tspool redis-cluster://:{env.P}@r1:6379,r2\n"), "modulus_webhook: spool: each Redis address must be host:port", "Caddyfile:3"},
		{"store sentinel inline password", wrap("\t\tstore redis-sentinel://:TEST-ONLY-fake-key-do-not-use-32@s1:26379/m\n"), "modulus_webhook: store: give the Redis password as {env.NAME} or {file.PATH}", "Caddyfile:3"},
		{"min_replicas not a number", wrap("\t\tmin_replicas one\n"), "modulus_webhook: min_replicas must be a whole number from 0 to 16", "Caddyfile:3"},
		{"min_replicas too many", wrap("\t\tmin_replicas 17\n"), "modulus_webhook: min_replicas must be a whole number from 0 to 16", "Caddyfile:3"},
		{"min_replicas file spool", wrap("\t\tmin_replicas 1\n\t\tspool /var/lib/qrphgate/webhooks.spool\n"), "modulus_webhook: min_replicas needs a Redis spool", "Caddyfile:3"},
		{"min_replicas default spool", wrap("\t\tforward_to http://a\n\t\tmin_replicas 1\n"), "modulus_webhook: min_replicas needs a Redis spool", "Caddyfile:4"},
		{"min_replicas_timeout too long", wrap("\t\tmin_replicas_timeout 9s\n"), "modulus_webhook: min_replicas_timeout must be a positive duration of at most 5s", "Caddyfile:3"},
		{"min_replicas_timeout zero", wrap("\t\tmin_replicas_timeout 0s\n"), "modulus_webhook: min_replicas_timeout must be a positive duration", "Caddyfile:3"},
		{"min_replicas_timeout alone", wrap("\t\tspool redis://r:6379/0\n\t\tmin_replicas_timeout 2s\n"), "modulus_webhook: min_replicas_timeout needs min_replicas", "Caddyfile:4"},
		{"bad key encoding", wrap("\t\tkey_encoding base32\n"), "modulus_webhook: key_encoding: unknown key encoding", "Caddyfile:3"},
		{"bad CIDR", wrap("\t\tallow_ips 203.0.113.10/32\n\t\tallow_ips 10.0.0.1/8\n"), "host bits set", "Caddyfile:4"},
		{"host name in allow_ips", wrap("\t\tallow_ips webhooks.moduluslabs.io\n"), "is not an IP address or CIDR", "Caddyfile:3"},
		{"any with addresses", wrap("\t\tallow_ips any 10.0.0.0/8\n"), "any cannot be combined", "Caddyfile:3"},
		{"forward_to with credentials", wrap("\t\tforward_to http://u:p@127.0.0.1:3000\n"), "forward_to must not carry credentials", "Caddyfile:3"},
		{"forward_to not a URL", wrap("\t\tforward_to 127.0.0.1:3000/payments\n"), "forward_to", "Caddyfile:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := adaptErr(t, tc.src)
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.line) {
				t.Fatalf("error %q lacks %q or the position %s", msg, tc.want, tc.line)
			}
			if strings.Contains(msg, "TEST-ONLY-fake-key") {
				t.Fatalf("error echoes the key: %s", msg)
			}
		})
	}
}

// The adapted JSON keeps secrets as placeholders.
func TestWebhookAdaptKeepsPlaceholders(t *testing.T) {
	t.Setenv("MODULUS_ENCRYPTION_KEY", "TEST-ONLY-fake-key-do-not-use-32")
	out, err := adapt(t, "Caddyfile", "https://pay.example.com {\n\tmodulus_webhook {\n\t\tdecryption_key {env.MODULUS_ENCRYPTION_KEY}\n\t\tallow_ips any\n\t\tforward_to http://127.0.0.1:3000\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "TEST-ONLY") || !strings.Contains(string(out), `{env.MODULUS_ENCRYPTION_KEY}`) {
		t.Fatalf("adapted JSON: %s", out)
	}
}
