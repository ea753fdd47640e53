package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qrphgate/qrphgate/audit"
)

// FuzzVerify feeds arbitrary bytes to Verify as a trail file (a damaged or
// forged one): it reports a broken line or a valid chain, never panics.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-01-15T10:30:00Z","event":"x","prev":"` + audit.ZeroHash + `"}` + "\n"))
	f.Add([]byte("{\"seq\":2}\n{\"seq\":3}\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"seq":18446744073709551615,"prev":"` + audit.ZeroHash + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(p)
		var be *audit.BrokenError
		if err != nil && !errors.As(err, &be) {
			t.Fatalf("not a BrokenError: %v", err)
		}
		if err == nil && rep.Lines > 0 && rep.Head == "" {
			t.Fatalf("a verified trail without a head: %+v", rep)
		}
	})
}
