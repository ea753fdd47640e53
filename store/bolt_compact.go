package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// A bbolt file keeps the bytes of a rewritten record in its free pages
// until it reuses them. After a re-encryption pass rewrote records that
// were plain (or sealed with a key being retired), those bytes are what
// encryption at rest must not leave behind: the pass marks the file
// (bucketMeta, keyCompact) in the same commit, and the next open copies
// the live records into a fresh file (bbolt's Compact), fsyncs it and
// renames it over the old one. A crash during the copy leaves the old
// file, still marked, and the next open copies again.
var (
	bucketMeta = []byte("meta")
	keyCompact = []byte("compact")
)

// markCompact asks the next open to compact the file.
func markCompact(tx *bolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return b.Put(keyCompact, []byte{1})
}

// compactIfMarked compacts the open file db when it is marked, and returns
// the file to use (db itself, or the compacted one, reopened).
func compactIfMarked(db *bolt.DB, path, what string, opts *bolt.Options) (*bolt.DB, error) {
	marked := false
	_ = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		marked = b != nil && b.Get(keyCompact) != nil
		return nil
	})
	if !marked || opts.ReadOnly {
		return db, nil
	}
	tmp := path + ".compact"
	fail := func(err error) (*bolt.DB, error) {
		_ = os.Remove(tmp)
		_ = db.Close()
		return nil, fmt.Errorf("compacting %s %s after a re-encryption: %w", what, path, err)
	}
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, opts)
	if err != nil {
		return fail(err)
	}
	err = bolt.Compact(dst, db, 0)
	if err == nil {
		err = dst.Update(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketMeta); b != nil {
				return b.Delete(keyCompact)
			}
			return nil
		})
	}
	if err = errors.Join(err, dst.Close()); err != nil {
		return fail(err)
	}
	if err := db.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("compacting %s %s after a re-encryption: %w", what, path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the rename itself durable
		_ = d.Close()
	}
	return bolt.Open(path, 0o600, opts)
}
