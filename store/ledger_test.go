package store_test

import (
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
	l, err := store.OpenFileLedger(path, 0, nil)
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

// The Redis ledger on every Redis deployment (single server, Cluster,
// Sentinel), each subtest under its own prefix; Reopen is a second client
// on the same prefix (the server keeps the data, as for a restarted
// replica).
func TestRedisLedger(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		storetest.Ledger(t, storetest.LedgerHarness{
			Open: func(t *testing.T) store.Ledger { return store.NewRedisLedger(openBackend(t, b, store.RedisOptions{})) },
			Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				prefix := store.LedgerRedisPrefix(l.(*store.RedisLedger))
				return store.NewRedisLedger(openBackend(t, b, store.RedisOptions{Prefix: prefix}))
			},
		})
	})
}
