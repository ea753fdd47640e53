package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// CheckUpstreamURL parses an upstream base URL: https, or http only towards a
// loopback host (the sandbox simulator, test stand-ins). It refuses user
// info, queries and fragments. Errors name field and never echo the value.
func CheckUpstreamURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s must be an absolute URL such as https://host", field)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s must not carry credentials in the URL", field)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("%s must not have a query or fragment", field)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%s must use https (plain http is allowed only to a loopback address)", field)
		}
	default:
		return nil, fmt.Errorf("%s must use https", field)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// IsLoopbackHost reports whether host is "localhost" or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// CheckSecretKey checks a secret key against the environment: an sk_live_ key
// is refused in sandbox and an sk_test_ key in production. A bare sk_ key (as
// in the docs' own example) is accepted with a warning, since its environment
// cannot be told. Messages name the field, never the value.
func (p *Policy) CheckSecretKey(env Environment, key string) (warning string, err error) {
	switch {
	case key == "":
		return "", errors.New("secret_key is empty (is the {env.*} or {file.*} placeholder set?)")
	case strings.ContainsAny(key, " \t\r\n"):
		return "", errors.New("secret_key contains whitespace")
	case !strings.HasPrefix(key, "sk_"):
		return "", errors.New("secret_key must start with sk_")
	case strings.HasPrefix(key, env.SecretKeyPrefix):
		return "", nil
	}
	if other := p.Other(env); strings.HasPrefix(key, other.SecretKeyPrefix) {
		return "", fmt.Errorf("secret_key is a %s key (%s…) but environment is %s", other.Name, other.SecretKeyPrefix, env.Name)
	}
	return fmt.Sprintf("secret_key has neither the %s nor the %s prefix; cannot check that it belongs to %s",
		p.env(Sandbox).SecretKeyPrefix, p.env(Production).SecretKeyPrefix, env.Name), nil
}

// CheckEnvironmentURL refuses an upstream URL that points at the other
// environment's known host (a sandbox config sending to production, or the
// reverse).
func (p *Policy) CheckEnvironmentURL(env Environment, field string, u *url.URL) error {
	other := p.Other(env)
	for _, known := range []string{other.QRURL, other.WebhooksURL} {
		if known == "" {
			continue
		}
		ku, err := url.Parse(known)
		if err == nil && strings.EqualFold(ku.Hostname(), u.Hostname()) {
			return fmt.Errorf("%s points at the %s host but environment is %s", field, other.Name, env.Name)
		}
	}
	return nil
}

// CheckActivationCode checks an activation code's format.
func (p *Policy) CheckActivationCode(field, code string) error {
	if !p.activationCode.MatchString(code) {
		return fmt.Errorf("%s must look like XXXX-XXXX-XXXX-XXXX (uppercase letters and digits)", field)
	}
	return nil
}
