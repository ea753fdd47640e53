package redistest

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/testcerts"
)

// certSet is a deployment's throwaway CA and server certificate, written
// to dir.
type certSet struct {
	dir  string
	pool *x509.CertPool
}

func newCertSet(t testing.TB, dir string) *certSet {
	return &certSet{dir: dir, pool: writeTestCerts(t, dir)}
}

// args are the redis-server (and redis-sentinel) options that serve the
// certificate; clients need none.
func (c *certSet) args() []string {
	return []string{"--tls-cert-file", filepath.Join(c.dir, "server.pem"), "--tls-key-file", filepath.Join(c.dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(c.dir, "ca.pem"), "--tls-auth-clients", "no"}
}

// writeTestCerts writes a throwaway CA (ca.pem) and a server certificate
// for 127.0.0.1 signed by it (server.pem, server.key) into dir, and returns
// a pool holding the CA. Test use only: the keys live in a temp directory
// for the length of one test. The certificate serves client auth too: the
// nodes of a TLS cluster present it to each other on the cluster bus,
// which always checks it.
func writeTestCerts(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	now := time.Now()
	ca := testcerts.NewCA(t, "redistest throwaway CA", now)
	cert, key := ca.Issue(t, "127.0.0.1", now.Add(-time.Hour), now.Add(24*time.Hour)).PEM(t)
	for name, b := range map[string][]byte{"ca.pem": ca.PEM(), "server.pem": cert, "server.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca.Pool()
}
