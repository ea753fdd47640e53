package caddymodule

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/qrphgate/qrphgate/crypto"
	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/preflight"
	"github.com/qrphgate/qrphgate/proxy/outbound"
)

// pfAPI is a modulus_api as preflight resolved it.
type pfAPI struct {
	h       *pfHandler
	m       *API
	site    site
	subject string
	// cfg is the engine's configuration, set when err is nil.
	cfg outbound.Config
	// err is the first error of the handler's start-up checks
	// (API.config: every rule, the secrets, the policy's checks).
	err error
	// credentialsRejected is true when live.credentials got a 401 or 403:
	// nothing else authenticated is sent with these credentials.
	credentialsRejected bool
}

// resolveAPI decodes a modulus_api and runs its start-up checks, the ones
// Provision runs before it opens the store.
func (run *pfRun) resolveAPI(h *pfHandler) *pfAPI {
	a := &pfAPI{h: h, m: new(API), site: h.site()}
	a.subject = "modulus_api " + a.site.String()
	if err := caddy.StrictUnmarshalJSON(h.raw, a.m); err != nil {
		a.m, a.err = nil, fmt.Errorf("decoding: %w", err)
		return a
	}
	a.m.logger = nopLogger
	a.cfg, a.err = a.m.config(run.repl)
	// Activation codes are secrets in production: no report shows one.
	run.secrets = append(run.secrets, a.cfg.DefaultMerchant)
	run.secrets = append(run.secrets, a.cfg.Merchants...)
	return a
}

// checkAPIs runs the offline checks of every modulus_api: the key against
// the environment, the encryption key's size, the upstream hosts and their
// scheme, and a file store's directory.
func (run *pfRun) checkAPIs() {
	for _, a := range run.apis {
		if a.m == nil {
			continue // config.provision says why
		}
		if a.m.Environment != policy.Sandbox && a.m.Environment != policy.Production {
			run.r.Add("api.environment", a.subject, preflight.Failure(
				fmt.Sprintf("environment is %q", a.m.Environment), "set environment to sandbox or production"))
			continue
		}
		pol, err := policy.Load(a.m.Policy)
		if err != nil {
			run.r.Add("api.environment", a.subject, preflight.Failure("policy: "+err.Error(), "fix the policy file"))
			continue
		}
		env, _ := pol.Environment(a.m.Environment)
		run.r.Add("api.secret_key", a.subject, run.apiSecretKey(a, pol, env))
		run.r.Add("api.encryption_key", a.subject, run.apiEncryptionKey(a))
		run.r.Add("api.hosts", a.subject, apiHosts(a, pol, env))
		run.r.Add("api.https", a.subject, apiSchemes(a, env))
		if path, ok := strings.CutPrefix(a.m.Store, "file://"); ok {
			path = run.repl.ReplaceKnown(path, "")
			run.r.Add("api.store", a.subject, preflight.SpoolFileVerdict("store", path, run.o.Clock))
		} else if a.m.Store != "" && a.m.Store != "memory" {
			run.addRedis(a.m.Store, "rate budget and idempotency store of "+a.subject, false)
		}
	}
}

// apiSecretKey: the secret key's prefix matches the environment.
func (run *pfRun) apiSecretKey(a *pfAPI, pol *policy.Policy, env policy.Environment) preflight.Verdict {
	fix := fmt.Sprintf("give the %s key (%s…) Modulus Labs sent for %s, as {env.NAME} or {file.PATH}", env.Name, env.SecretKeyPrefix, env.Name)
	secret, err := run.secret("secret_key", a.m.SecretKey, false)
	if err != nil {
		return preflight.Failure(err.Error(), fix)
	}
	warning, err := pol.CheckSecretKey(env, secret)
	switch {
	case err != nil:
		return preflight.Failure(err.Error(), fix)
	case warning != "":
		return preflight.Warning(warning, "use the "+env.SecretKeyPrefix+"… key if Modulus Labs issued one")
	}
	return preflight.Pass(fmt.Sprintf("secret_key is a %s key (%s…), as environment %s wants", env.Name, env.SecretKeyPrefix, env.Name))
}

// apiEncryptionKey: the encryption key decodes to 32 bytes.
func (run *pfRun) apiEncryptionKey(a *pfAPI) preflight.Verdict {
	const fix = "set key_encoding to how the key is written (utf8, base64, base64url or hex) so that it decodes to 32 bytes"
	enc, err := crypto.ParseEncoding(a.m.KeyEncoding)
	if err != nil {
		return preflight.Failure("key_encoding: "+err.Error(), fix)
	}
	material, err := run.secret("encryption_key", a.m.EncryptionKey, false)
	if err != nil {
		return preflight.Failure(err.Error(), "give the encryption key as {env.NAME} or {file.PATH}")
	}
	if _, err := crypto.NewKey("encryption_key", material, enc); err != nil {
		return preflight.Failure(err.Error(), fix)
	}
	return preflight.Pass(fmt.Sprintf("encryption_key decodes to %d bytes (key_encoding %s)", crypto.KeySize, cmp.Or(string(enc), string(crypto.EncodingUTF8))))
}

// apiUpstreams returns the configured (or default) upstream URLs by option.
func apiUpstreams(a *pfAPI, env policy.Environment) [][2]string {
	out := [][2]string{{"qr_url", cmp.Or(a.m.QRURL, env.QRURL)}}
	if wh := cmp.Or(a.m.WebhooksURL, env.WebhooksURL); wh != "" {
		out = append(out, [2]string{"webhooks_url", wh})
	}
	return out
}

// apiHosts: no host of the other environment (the guide's "no sandbox URLs
// remain"), no simulator on loopback in production, and a webhooks_url in
// production, where the provider publishes none.
func apiHosts(a *pfAPI, pol *policy.Policy, env policy.Environment) preflight.Verdict {
	var found []preflight.Verdict
	var hosts []string
	for _, u := range apiUpstreams(a, env) {
		parsed, err := url.Parse(u[1])
		if err != nil || parsed.Host == "" {
			found = append(found, preflight.Failure(u[0]+" is not an absolute URL", "set "+u[0]+" to https://host"))
			continue
		}
		hosts = append(hosts, u[0]+" "+parsed.Host)
		if err := pol.CheckEnvironmentURL(env, u[0], parsed); err != nil {
			found = append(found, preflight.Failure(err.Error(),
				fmt.Sprintf("remove %s (the %s default is right) or point it at the %s host", u[0], env.Name, env.Name)))
		}
		if env.Name == policy.Production && policy.IsLoopbackHost(parsed.Hostname()) {
			found = append(found, preflight.Failure(u[0]+" points at a loopback address (a simulator?) but environment is production",
				"remove "+u[0]+" (the production default) or set the host from your onboarding email"))
		}
	}
	if env.Name == policy.Production && cmp.Or(a.m.WebhooksURL, env.WebhooksURL) == "" {
		found = append(found, preflight.Warning("webhooks_url is not set: /v1/webhooks answers 501, and preflight --live cannot check the webhook registrations",
			"set webhooks_url to the production webhooks host from your onboarding email"))
	}
	ok := fmt.Sprintf("%s: no %s host in a %s block", strings.Join(hosts, " and "), pol.Other(env).Name, env.Name)
	if len(found) == 0 {
		return preflight.Pass(ok)
	}
	return preflight.Worst(ok, found...)
}

// apiSchemes: the upstreams are https; plain http (allowed only to
// loopback) is a simulator, fair in the sandbox and wrong in production.
func apiSchemes(a *pfAPI, env policy.Environment) preflight.Verdict {
	var plain []string
	for _, u := range apiUpstreams(a, env) {
		if parsed, err := url.Parse(u[1]); err == nil && parsed.Scheme != "https" {
			plain = append(plain, u[0]+" "+u[1])
		}
	}
	switch {
	case len(plain) == 0:
		return preflight.Pass("the upstreams are https")
	case env.Name == policy.Production:
		return preflight.Failure("plain http in production: "+strings.Join(plain, " and "),
			"remove them: the production defaults are https")
	}
	return preflight.Warning("plain http to a loopback address, a simulator, not the real sandbox: "+strings.Join(plain, " and "),
		"for the real sandbox, remove qr_url and webhooks_url (the sandbox defaults are https)")
}

// resolveSandbox runs a modulus_sandbox's start-up checks on its options
// and secrets (not the simulator itself, which would bind its webhook
// source address).
func (run *pfRun) resolveSandbox(h *pfHandler) error {
	s := new(Sandbox)
	if err := caddy.StrictUnmarshalJSON(h.raw, s); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if err := checkRules(sandboxRules, s); err != nil {
		return err
	}
	if _, err := run.secret("secret_key", s.SecretKey, true); err != nil {
		return err
	}
	material, err := run.secret("encryption_key", s.EncryptionKey, true)
	if err != nil {
		return err
	}
	enc, err := crypto.ParseEncoding(s.KeyEncoding)
	if err != nil {
		return fmt.Errorf("key_encoding: %w", err)
	}
	if _, err := crypto.NewKey("encryption_key", material, enc); err != nil {
		return err
	}
	if s.InboxSignSecret != "" {
		if _, err := run.secret("inbox_sign_secret", s.InboxSignSecret, true); err != nil {
			return err
		}
	}
	return nil
}

// checkSandboxes: the simulator has no place in production, and is worth
// a reminder in the sandbox.
func (run *pfRun) checkSandboxes() {
	for _, h := range run.cfg.of(handlerSandbox) {
		subject := "modulus_sandbox " + h.site().String()
		if run.production {
			run.r.Add("sandbox.simulator", subject, preflight.Failure("the simulator is configured in a config with a production modulus_api",
				"remove the modulus_sandbox site"))
			continue
		}
		run.r.Add("sandbox.simulator", subject, preflight.Warning("the simulator is configured: payments here are simulated",
			"for the real sandbox and production, remove the modulus_sandbox site (docs/to-production.md)"))
	}
}
