package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

func TestMemoryLedger(t *testing.T) {
	storetest.Ledger(t, storetest.LedgerHarness{
		Open: func(*testing.T) store.Ledger { return store.NewMemoryLedger() },
	})
}

func openFileLedger(t *testing.T, path string) *store.FileLedger {
	t.Helper()
	l, err := store.OpenFileLedger(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFileLedger(t *testing.T) {
	storetest.Ledger(t, storetest.LedgerHarness{
		Open: func(t *testing.T) store.Ledger { return openFileLedger(t, filepath.Join(t.TempDir(), "ledger.db")) },
		Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
			path := l.(*store.FileLedger).Path()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return openFileLedger(t, path)
		},
	})
}

// The Redis ledger on the shared server, each subtest under its own
// prefix; Reopen is a second client on the same prefix (the server keeps
// the data, as for a restarted replica).
func TestRedisLedger(t *testing.T) {
	t.Parallel()
	storetest.Ledger(t, storetest.LedgerHarness{
		Open: func(t *testing.T) store.Ledger { return store.NewRedisLedger(openTestRedis(t)) },
		Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			prefix := store.LedgerRedisPrefix(l.(*store.RedisLedger))
			r, err := store.OpenRedis(context.Background(), testRedisURL, store.RedisOptions{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			return store.NewRedisLedger(r)
		},
	})
}
