package caddymodule

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/store"
)

// pfWebhook is a modulus_webhook as preflight resolved it.
type pfWebhook struct {
	h       *pfHandler
	m       *Webhook
	site    site
	subject string
	// production is true when the provider's production delivers here:
	// the config has a production modulus_api or, without any
	// modulus_api, the site's name is public.
	production bool
	// err is the first error of the handler's start-up checks.
	err error
	// spool and fingerprint are the spool and the delivery settings (two
	// handlers of a config may share a spool only with the same settings).
	spool, fingerprint string
}

// resolveWebhook decodes a modulus_webhook and runs its start-up checks,
// the ones Provision runs before it opens the spool and its worker.
func (run *pfRun) resolveWebhook(h *pfHandler) *pfWebhook {
	w := &pfWebhook{h: h, m: new(Webhook), site: h.site()}
	w.subject = "modulus_webhook " + w.site.String()
	w.production = run.production
	if len(run.apis) == 0 {
		w.production = isPublicName(w.site.host)
	}
	if err := caddy.StrictUnmarshalJSON(h.raw, w.m); err != nil {
		w.m, w.err = nil, fmt.Errorf("decoding: %w", err)
		return w
	}
	m := w.m
	m.logger = nopLogger
	steps := []func() error{
		func() error { return checkRules(webhookRules, m) },
		func() error { _, err := m.keyring(run.repl); return err },
		func() error { _, err := m.allowlist(run.repl); return err },
		func() error { _, err := m.activationCodes(run.repl); return err },
		func() (err error) { _, w.fingerprint, err = m.deliveryConfig(run.repl); return err },
		func() (err error) { w.spool, err = m.spoolSpec(run.repl); return err },
	}
	for _, step := range steps {
		if w.err = step(); w.err != nil {
			break
		}
	}
	return w
}

// isPublicName reports whether clients on the internet would use host: not
// empty (a site without a name answers any), not localhost, loopback or a
// private address, not a reserved test name.
func isPublicName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "" {
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
	}
	for _, suffix := range []string{"localhost", ".test", ".example", ".invalid", ".local", ".internal", ".home.arpa"} {
		if h == strings.TrimPrefix(suffix, ".") || strings.HasSuffix(h, suffix) {
			return false
		}
	}
	return true
}

// checkWebhooks runs the offline checks of every modulus_webhook:
// allow_ips, decryption keys, sign_secret, TLS, trusted proxies and the
// spool. Rules that matter only in production warn in the sandbox.
func (run *pfRun) checkWebhooks() {
	for _, w := range run.webhooks {
		if w.m == nil {
			continue // config.provision says why
		}
		run.r.Add("webhook.allow_ips", w.subject, run.webhookAllowIPs(w))
		run.r.Add("webhook.decryption_keys", w.subject, run.webhookKeys(w))
		run.r.Add("webhook.sign_secret", w.subject, run.webhookSignSecret(w))
		run.r.Add("webhook.tls", w.subject, webhookTLS(w))
		run.r.Add("webhook.trusted_proxies", w.subject, webhookTrustedProxies(w))
		run.r.Add("webhook.spool", w.subject, run.webhookSpool(w))
	}
}

// prodOnly is a verdict that fails in production and warns elsewhere.
func prodOnly(production bool, reason, fix string) preflight.Verdict {
	if production {
		return preflight.Failure(reason, fix)
	}
	return preflight.Warning(reason+" (acceptable in the sandbox; production refuses it)", fix)
}

func (run *pfRun) webhookAllowIPs(w *pfWebhook) preflight.Verdict {
	const fix = "set allow_ips to the Webhook IP Whitelist Modulus Labs gave you with the production credentials"
	allow, err := w.m.allowlist(run.repl)
	switch {
	case err != nil:
		return preflight.Failure(err.Error(), fix)
	case allow.AllowsAny():
		return prodOnly(w.production, "allow_ips is any: webhooks are accepted from every address", fix)
	}
	prefixes := allow.Prefixes()
	public := false
	for _, p := range prefixes {
		a := p.Addr()
		public = public || !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast())
	}
	if w.production && !public {
		return preflight.Warning("allow_ips ("+allow.String()+") holds only loopback or private addresses: the provider's webhooks come from public ones",
			fix+" (behind a proxy, set trusted_proxies so that the client address is the provider's)")
	}
	return preflight.Pass(fmt.Sprintf("allow_ips allows %d address range(s): %s", len(prefixes), allow.String()))
}

func (run *pfRun) webhookKeys(w *pfWebhook) preflight.Verdict {
	const fix = "give each decryption_key as {env.NAME} or {file.PATH}, with the key_encoding that makes it 32 bytes"
	enc, err := crypto.ParseEncoding(w.m.KeyEncoding)
	if err != nil {
		return preflight.Failure("key_encoding: "+err.Error(), fix)
	}
	if len(w.m.DecryptionKeys) == 0 {
		return preflight.Failure("decryption_key is required", fix)
	}
	for i, raw := range w.m.DecryptionKeys {
		name := listName("decryption_key", i)
		material, err := run.secret(name, raw, false)
		if err == nil {
			_, err = crypto.NewKey(name, material, enc)
		}
		if err != nil {
			return preflight.Failure(err.Error(), fix)
		}
	}
	return preflight.Pass(fmt.Sprintf("%d decryption key(s), each decodes to %d bytes", len(w.m.DecryptionKeys), crypto.KeySize))
}

func (run *pfRun) webhookSignSecret(w *pfWebhook) preflight.Verdict {
	const fix = `set sign_secret {env.QRPHGATE_SIGNING_SECRET}, made with echo "whsec_$(openssl rand -base64 32)", and verify Webhook-Signature in the app`
	raw := w.m.SignSecrets
	if w.m.SignSecret != "" {
		raw = []string{w.m.SignSecret}
	}
	if len(raw) == 0 {
		return prodOnly(w.production, "no sign_secret: the app cannot tell qrphgate's deliveries from anyone else's", fix)
	}
	for _, r := range raw {
		_, _ = run.secret("sign_secret", r, false) // kept for scrubbing; signer reports the errors
	}
	if _, _, err := w.m.signer(run.repl); err != nil {
		return preflight.Failure(err.Error(), fix)
	}
	return preflight.Pass(fmt.Sprintf("deliveries are signed (Webhook-Signature) with %d secret(s)", len(raw)))
}

func webhookTLS(w *pfWebhook) preflight.Verdict {
	srv := w.h.server
	switch {
	case !srv.known:
		return preflight.Warning("cannot tell whether the site has TLS: the config did not provision", "fix config.provision first")
	case !srv.tls:
		return prodOnly(w.production, "the site is plain http: the provider posts webhooks only over https",
			"serve the route on an https site with a public name (pay.example.com { ... }); Caddy gets its certificate")
	}
	return preflight.Pass("the site is served over https")
}

func webhookTrustedProxies(w *pfWebhook) preflight.Verdict {
	srv := w.h.server
	switch {
	case !srv.trustedProxies:
		return preflight.Pass("no trusted proxies: allow_ips is checked against the connecting address")
	case !srv.strict:
		return preflight.Failure("server "+srv.name+" trusts proxies without trusted_proxies_strict: modulus_webhook refuses every webhook that comes through them (the sender could choose its address)",
			"add trusted_proxies_strict to the servers global options, beside trusted_proxies")
	}
	return preflight.Pass("trusted proxies with trusted_proxies_strict: the client address is read from the right")
}

func (run *pfRun) webhookSpool(w *pfWebhook) preflight.Verdict {
	spec, err := w.m.spoolSpec(run.repl)
	if err != nil {
		return preflight.Failure(err.Error(), "set spool to a writable file path or a redis:// URL")
	}
	if w.m.Store != "" {
		run.addRedis(w.m.Store, "de-duplication store of "+w.subject, false)
	}
	if strings.Contains(spec, "://") {
		run.addRedis(w.m.Spool, "spool of "+w.subject, true)
		return preflight.Pass("the spool is on Redis " + store.RedactURL(spec) + " (see the redis.* checks)")
	}
	return preflight.SpoolFileVerdict("spool", spec, run.o.Clock)
}
