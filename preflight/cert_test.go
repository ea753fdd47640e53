package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/testcerts"
)

var certNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestCertificateVerdict(t *testing.T) {
	public := testcerts.NewCA(t, "Public Test CA", certNow)
	local := testcerts.NewCA(t, "Caddy Local Authority - ECC Intermediate", certNow)
	const host = "pay.example.com"
	day := 24 * time.Hour
	long := public.Issue(t, host, certNow.Add(-30*day), certNow.Add(60*day)).Cert
	expiring := public.Issue(t, host, certNow.Add(-80*day), certNow.Add(10*day)).Cert
	expired := public.Issue(t, host, certNow.Add(-90*day), certNow.Add(-day)).Cert
	other := public.Issue(t, "other.example.com", certNow.Add(-day), certNow.Add(60*day)).Cert
	short := public.Issue(t, host, certNow.Add(-2*day), certNow.Add(4*day)).Cert
	internal := local.Issue(t, host, certNow.Add(-time.Hour), certNow.Add(11*time.Hour)).Cert
	unknown := testcerts.NewCA(t, "Nobody's CA", certNow).Issue(t, host, certNow.Add(-day), certNow.Add(60*day)).Cert

	opts := func(production bool) CertOptions {
		return CertOptions{Host: host, Now: certNow, Roots: public.Pool(), LocalRoots: local.Pool(), Production: production}
	}
	for _, tc := range []struct {
		name       string
		cert       *x509.Certificate
		version    uint16
		production bool
		want       Status
		has        string
	}{
		{"valid", long, tls.VersionTLS13, true, OK, "60 days left), issued by Public Test CA, served with TLS 1.3"},
		{"valid from storage", long, 0, true, OK, "issued by Public Test CA"},
		{"old TLS", long, tls.VersionTLS11, true, Fail, "served with TLS 1.1"},
		{"expires soon", expiring, tls.VersionTLS13, true, Fail, "expires in 10 days"},
		{"expired", expired, tls.VersionTLS13, false, Fail, "expired on"},
		{"wrong name", other, tls.VersionTLS13, false, Fail, "not valid for pay.example.com"},
		{"untrusted", unknown, tls.VersionTLS13, false, Fail, "issued by Nobody's CA"},
		{"short-lived", short, tls.VersionTLS13, true, Warn, "short-lived certificate (valid 6 days in all)"},
		{"internal in the sandbox", internal, tls.VersionTLS13, false, Warn, "only the simulator trusts it"},
		{"internal in production", internal, tls.VersionTLS13, true, Fail, "the provider does not trust"},
	} {
		v := CertificateVerdict([]*x509.Certificate{tc.cert}, tc.version, opts(tc.production))
		if v.Status != tc.want || !strings.Contains(v.Reason, tc.has) || (v.Status != OK && v.Fix == "") {
			t.Errorf("%s: %+v, want %s with %q", tc.name, v, tc.want, tc.has)
		}
	}
	if v := CertificateVerdict(nil, 0, opts(true)); v.Status != Fail {
		t.Errorf("no certificate: %+v", v)
	}
}

// ProbeTLS reports the certificate and the version the server chose,
// including one below TLS 1.2, which CertificateVerdict then fails.
func TestProbeTLS(t *testing.T) {
	issued := testcerts.NewCA(t, "Probe CA", time.Now()).Issue(t, "pay.example.com", time.Now().Add(-time.Hour), time.Now().Add(60*24*time.Hour))
	leaf, key := issued.Cert, issued.Key
	for _, tc := range []struct {
		max  uint16
		want uint16
	}{{0, tls.VersionTLS13}, {tls.VersionTLS11, tls.VersionTLS11}} {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.TLS = &tls.Config{
			MinVersion: tls.VersionTLS10, MaxVersion: tc.max,
			Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}},
		}
		srv.StartTLS()
		chain, version, err := ProbeTLS(context.Background(), srv.Listener.Addr().String(), "pay.example.com")
		srv.Close()
		if err != nil || version != tc.want || len(chain) != 1 || !chain[0].Equal(leaf) {
			t.Fatalf("max %x: chain %d, version %x, %v", tc.max, len(chain), version, err)
		}
	}
	if _, _, err := ProbeTLS(context.Background(), "127.0.0.1:1", "x"); err == nil {
		t.Fatal("a closed port answered")
	}
}

// The TLS check proves a refusal: a server that prefers TLS 1.3 but would
// still settle for TLS 1.1 passes the first handshake (it offers every
// version) and is caught by the second, limited to TLS 1.0 and 1.1; a
// server with Go's defaults (TLS 1.2 and newer) refuses it and passes.
func TestProbeLegacyTLS(t *testing.T) {
	issued := testcerts.NewCA(t, "Probe CA", time.Now()).Issue(t, "pay.example.com", time.Now().Add(-time.Hour), time.Now().Add(60*24*time.Hour))
	cert := tls.Certificate{Certificate: [][]byte{issued.Cert.Raw}, PrivateKey: issued.Key, Leaf: issued.Cert}
	for _, tc := range []struct {
		name string
		min  uint16
		want Status
		has  string
	}{
		{"settles for TLS 1.1", tls.VersionTLS10, Fail, "accepts TLS 1.1"},
		{"TLS 1.2 and newer", 0, OK, "refuses TLS 1.1 and older"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.TLS = &tls.Config{MinVersion: tc.min, Certificates: []tls.Certificate{cert}}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
			srv.StartTLS()
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			if _, version, err := ProbeTLS(context.Background(), addr, "pay.example.com"); err != nil || version != tls.VersionTLS13 {
				t.Fatalf("first handshake: %x %v", version, err)
			}
			v := LegacyTLSVerdict(ProbeLegacyTLS(context.Background(), addr, "pay.example.com"))
			if v.Status != tc.want || !strings.Contains(v.Reason, tc.has) || (v.Status != OK && v.Fix == "") {
				t.Fatalf("%+v, want %s with %q", v, tc.want, tc.has)
			}
		})
	}
	// A server that cannot be reached again cannot be judged.
	if v := LegacyTLSVerdict(ProbeLegacyTLS(context.Background(), "127.0.0.1:1", "x")); v.Status != Warn {
		t.Fatalf("unreachable: %+v", v)
	}
}
