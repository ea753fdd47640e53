package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// MinCertificateValidity is how long a webhook site's certificate must
// still be valid at go-live.
const MinCertificateValidity = 14 * 24 * time.Hour

// CertOptions say what a webhook site's certificate is checked against.
type CertOptions struct {
	// Host is the name the provider connects to.
	Host string

	// Now is the time the certificate must be valid at.
	Now time.Time

	// Roots are the trusted authorities; nil means the system's.
	Roots *x509.CertPool

	// LocalRoots are Caddy's own CA (`tls internal`), which only the
	// simulator trusts: a certificate from it passes with a warning in
	// the sandbox and fails in production.
	LocalRoots *x509.CertPool

	// Production is true when the provider's production delivers here.
	Production bool
}

// ProbeTLS connects to addr (host:port) with serverName and returns the
// certificates the server sent and the TLS version it chose. It does not
// verify them (CertificateVerdict does, and says why they fail). Every
// version from TLS 1.0 is offered, so that the version the server picks
// shows whether it would settle for less than TLS 1.2.
func ProbeTLS(ctx context.Context, addr, serverName string) ([]*x509.Certificate, uint16, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config:    &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS10, InsecureSkipVerify: true}, //nolint:gosec // verified by CertificateVerdict, versions judged by it
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	return st.PeerCertificates, st.Version, nil
}

// ProbeLegacyTLS makes a second handshake with addr, offering only TLS 1.0
// and 1.1: the first (ProbeTLS) shows what the server prefers, this one
// whether it would still settle for less than TLS 1.2 with a client that
// has nothing better. It returns the version agreed when the server took
// it, or the handshake's error (a refusal: an alert, or the connection
// closed) when it did not.
func ProbeLegacyTLS(ctx context.Context, addr, serverName string) (uint16, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, //nolint:gosec // the point: does the server refuse these?
			InsecureSkipVerify: true}, //nolint:gosec // only the version is judged here
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().Version, nil
}

// LegacyTLSVerdict judges ProbeLegacyTLS's answer: a server that took a
// handshake limited to TLS 1.1 fails; one that refused it (a TLS alert,
// the connection closed during the handshake) passes; one that could not
// be reached again, or did not answer in time, cannot be judged and warns.
func LegacyTLSVerdict(version uint16, err error) Verdict {
	const fix = "allow only TLS 1.2 and newer (Caddy's default; remove a `protocols` setting that allows older)"
	var ne net.Error
	var oe *net.OpError
	switch {
	case err == nil:
		return Failure("accepts "+tls.VersionName(version)+": a client limited to TLS 1.0 and 1.1 connected", fix)
	case errors.As(err, &oe) && oe.Op == "dial":
		return Warning("could not tell whether it refuses TLS 1.1 and older: the second connection failed ("+err.Error()+")",
			"run preflight --live again; check with `openssl s_client -tls1_1 -connect host:443`")
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return Warning("could not tell whether it refuses TLS 1.1 and older: the handshake limited to them timed out ("+err.Error()+")",
			"run preflight --live again; check with `openssl s_client -tls1_1 -connect host:443`")
	}
	return Pass("refuses TLS 1.1 and older (a handshake limited to them failed: " + err.Error() + ")")
}

// CertificateVerdict judges a webhook site's certificate chain (leaf
// first) and the TLS version it was served with (0 when read from
// storage rather than served): trusted for Host, TLS 1.2 or newer, and
// valid for more than MinCertificateValidity. A certificate whose whole
// lifetime is shorter than that (short-lived ACME certificates, Caddy's
// internal CA) cannot meet the rule and gets a warning instead, since
// Caddy renews it.
func CertificateVerdict(chain []*x509.Certificate, version uint16, o CertOptions) Verdict {
	if len(chain) == 0 {
		return Failure("no certificate", "serve the webhook site over HTTPS with a certificate for "+o.Host)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	verify := func(roots *x509.CertPool) error {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: o.Host, Roots: roots, Intermediates: inter, CurrentTime: o.Now})
		return err
	}
	var found []Verdict
	local := false
	if err := verify(o.Roots); err != nil {
		if o.LocalRoots != nil && verify(o.LocalRoots) == nil {
			local = true
		} else {
			return Failure(certError(err, leaf, o), "serve a certificate from a public CA for "+o.Host+" (Caddy gets one by itself for a public name on ports 80 and 443)")
		}
	}
	if local && o.Production {
		found = append(found, Failure("issued by Caddy's local CA (tls internal), which the provider does not trust",
			"remove `tls internal`: give the site a public name so that Caddy gets a certificate from a public CA"))
	} else if local {
		found = append(found, Warning("issued by Caddy's local CA (tls internal): only the simulator trusts it",
			"for the real sandbox, give the site a public name so that Caddy gets a certificate from a public CA"))
	}
	if version != 0 && version < tls.VersionTLS12 {
		found = append(found, Failure("served with "+tls.VersionName(version),
			"allow only TLS 1.2 and newer (Caddy's default; remove a `protocols` setting that allows older)"))
	}
	left := leaf.NotAfter.Sub(o.Now)
	if left < MinCertificateValidity {
		until := fmt.Sprintf("expires in %s (%s)", days(left), leaf.NotAfter.UTC().Format(time.RFC3339))
		if leaf.NotAfter.Sub(leaf.NotBefore) <= MinCertificateValidity {
			found = append(found, Warning(until+"; a short-lived certificate (valid "+days(leaf.NotAfter.Sub(leaf.NotBefore))+" in all) never has 14 days left",
				"make sure Caddy manages (renews) this certificate: it does for the names it obtained itself"))
		} else {
			found = append(found, Failure(until+": renewal has not happened",
				"renew it now: check Caddy's logs for renewal errors, or replace the certificate files it loads"))
		}
	}
	desc := fmt.Sprintf("certificate for %s valid until %s (%s left), issued by %s", o.Host,
		leaf.NotAfter.UTC().Format(time.RFC3339), days(left), issuerName(leaf))
	if version != 0 {
		desc += ", served with " + tls.VersionName(version)
	}
	v := Worst(desc, found...)
	if len(found) > 0 {
		v.Reason = desc + ": " + v.Reason
	}
	return v
}

func certError(err error, leaf *x509.Certificate, o CertOptions) string {
	var inv x509.CertificateInvalidError
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		if o.Now.After(leaf.NotAfter) {
			return "the certificate expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
		}
		return "the certificate is not valid yet (from " + leaf.NotBefore.UTC().Format(time.RFC3339) + ")"
	case errors.As(err, &host):
		return "the certificate is not valid for " + o.Host + " (" + host.Error() + ")"
	case errors.As(err, &unknown):
		return "the certificate is not trusted: issued by " + issuerName(leaf) + ", an authority the provider does not know"
	}
	return "the certificate does not verify: " + err.Error()
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// days renders a duration in days (hours under two days).
func days(d time.Duration) string {
	if d < 48*time.Hour && d > -48*time.Hour {
		return fmt.Sprintf("%.0fh", d.Hours())
	}
	return fmt.Sprintf("%.0f days", d.Hours()/24)
}
