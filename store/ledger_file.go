package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketLedger holds the file ledger's records: id -> record.
var bucketLedger = []byte("ledger")

// FileLedger is the payments ledger in one bbolt file, so one sidecar
// keeps it across restarts. Like the file store it is a MemoryLedger with
// a journal: reads are served from memory (the whole ledger is loaded at
// open, so its size is bounded by ledger_retention), and every change is
// written to the file (group commit, fsynced) before the call returns.
// The file is locked by one process; replicas share a ledger through
// Redis instead.
type FileLedger struct {
	*MemoryLedger
	db   *bolt.DB
	c    *boltCommitter
	path string
}

// OpenFileLedger opens (creating if needed) the ledger file at path and
// loads it. lockTimeout is how long to wait for another process to release
// the file (5s when zero).
func OpenFileLedger(path string, lockTimeout time.Duration) (*FileLedger, error) {
	if lockTimeout <= 0 {
		lockTimeout = 5 * time.Second
	}
	db, err := openBoltFile(path, "ledger", lockTimeout)
	if err != nil {
		return nil, err
	}
	f := &FileLedger{MemoryLedger: NewMemoryLedger(), db: db, path: path}
	if err := f.loadFile(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("loading ledger %s: %w", path, err)
	}
	f.c = newBoltCommitter(db, 1024)
	f.journal = fileLedgerJournal{f.c}
	return f, nil
}

func (f *FileLedger) loadFile() error {
	if err := f.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLedger)
		return err
	}); err != nil {
		return err
	}
	return f.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLedger).ForEach(func(k, v []byte) error {
			rec, err := decodeLedgerRecord(v)
			if err != nil || rec.ID != string(k) {
				return fmt.Errorf("record %q: %w", k, errCorruptRecord)
			}
			f.load(rec)
			return nil
		})
	})
}

// Path is the ledger file's path.
func (f *FileLedger) Path() string { return f.path }

// Close waits for queued writes and closes the file.
func (f *FileLedger) Close() error {
	_ = f.MemoryLedger.Close()
	if !f.c.close() {
		return nil
	}
	return f.db.Close()
}

// fileLedgerJournal writes a MemoryLedger's changes through the group
// committer.
type fileLedgerJournal struct{ c *boltCommitter }

func (j fileLedgerJournal) putRecord(rec LedgerRecord) <-chan error {
	k, v := []byte(rec.ID), encodeLedgerRecord(rec)
	return j.c.enqueue(func(tx *bolt.Tx) error { return tx.Bucket(bucketLedger).Put(k, v) })
}

func (j fileLedgerJournal) deleteRecord(id string) <-chan error {
	k := []byte(id)
	return j.c.enqueue(func(tx *bolt.Tx) error { return tx.Bucket(bucketLedger).Delete(k) })
}

// A ledger record in the file: a version byte, the strings (id, merchant,
// reference, status) and the data length-prefixed (uvarint), then created
// and due as Unix nanoseconds (varint, 0 for the zero time) and the
// version (varint).
const ledgerRecordVersion = 1

func encodeLedgerRecord(rec LedgerRecord) []byte {
	b := make([]byte, 0, 48+len(rec.ID)+len(rec.Merchant)+len(rec.Reference)+len(rec.Status)+len(rec.Data))
	b = append(b, ledgerRecordVersion)
	for _, s := range []string{rec.ID, rec.Merchant, rec.Reference, rec.Status} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(rec.Data)))
	b = append(b, rec.Data...)
	b = binary.AppendVarint(b, unixNano(rec.Created))
	b = binary.AppendVarint(b, unixNano(rec.Due))
	return binary.AppendVarint(b, rec.Version)
}

func decodeLedgerRecord(b []byte) (LedgerRecord, error) {
	var rec LedgerRecord
	if len(b) == 0 || b[0] != ledgerRecordVersion {
		return rec, errCorruptRecord
	}
	d := decoder{b: b[1:]}
	for _, s := range []*string{&rec.ID, &rec.Merchant, &rec.Reference, &rec.Status} {
		*s = string(d.bytes())
	}
	rec.Data = append([]byte(nil), d.bytes()...)
	rec.Created = fromUnixNano(d.varint())
	rec.Due = fromUnixNano(d.varint())
	rec.Version = d.varint()
	if d.err || len(d.b) != 0 || checkLedgerRecord(rec) != nil || rec.Version < 1 {
		return LedgerRecord{}, errCorruptRecord
	}
	return rec, nil
}

// Interface guard.
var _ Ledger = (*FileLedger)(nil)
