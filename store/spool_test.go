package store_test

import (
	"path/filepath"
	"testing"

	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

func TestMemorySpool(t *testing.T) {
	storetest.Spool(t, storetest.SpoolHarness{
		Open: func(*testing.T) store.Spool { return storetest.NewMemorySpool() },
	})
}

func TestBoltSpool(t *testing.T) {
	storetest.Spool(t, storetest.SpoolHarness{
		Open: func(t *testing.T) store.Spool { return openBolt(t, filepath.Join(t.TempDir(), "spool.db"), nil) },
		Reopen: func(t *testing.T, s store.Spool) store.Spool {
			path := s.(*store.BoltSpool).Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openBolt(t, path, nil)
		},
	})
}
