package preflight

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var certNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testCA is a throwaway authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: certNow.Add(-365 * 24 * time.Hour), NotAfter: certNow.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

// leaf issues a certificate for host valid from notBefore to notAfter.
func (ca *testCA) leaf(t *testing.T, host string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestCertificateVerdict(t *testing.T) {
	public := newTestCA(t, "Public Test CA")
	local := newTestCA(t, "Caddy Local Authority - ECC Intermediate")
	const host = "pay.example.com"
	day := 24 * time.Hour
	long, _ := public.leaf(t, host, certNow.Add(-30*day), certNow.Add(60*day))
	expiring, _ := public.leaf(t, host, certNow.Add(-80*day), certNow.Add(10*day))
	expired, _ := public.leaf(t, host, certNow.Add(-90*day), certNow.Add(-day))
	other, _ := public.leaf(t, "other.example.com", certNow.Add(-day), certNow.Add(60*day))
	short, _ := public.leaf(t, host, certNow.Add(-2*day), certNow.Add(4*day))
	internal, _ := local.leaf(t, host, certNow.Add(-time.Hour), certNow.Add(11*time.Hour))
	unknown, _ := newTestCA(t, "Nobody's CA").leaf(t, host, certNow.Add(-day), certNow.Add(60*day))

	opts := func(production bool) CertOptions {
		return CertOptions{Host: host, Now: certNow, Roots: public.pool, LocalRoots: local.pool, Production: production}
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
	ca := newTestCA(t, "Probe CA")
	leaf, key := ca.leaf(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(60*24*time.Hour))
	leaf.IPAddresses = nil
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
