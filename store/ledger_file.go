package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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
	db     *bolt.DB
	c      *boltCommitter
	path   string
	atRest *AtRest
	// undecryptable counts the records the load could not decrypt (the
	// key that sealed them is not configured): left on disk, not loaded.
	undecryptable int
}

// OpenFileLedger opens (creating if needed) the ledger file at path and
// loads it. lockTimeout is how long to wait for another process to release
// the file (5s when zero); atRest seals the records' payment data
// (merchant, reference, entry) when it holds a Sealer (nil: plain).
func OpenFileLedger(path string, lockTimeout time.Duration, atRest *AtRest) (*FileLedger, error) {
	if lockTimeout <= 0 {
		lockTimeout = 5 * time.Second
	}
	db, err := openBoltFile(path, "ledger", lockTimeout)
	if err != nil {
		return nil, err
	}
	f := &FileLedger{MemoryLedger: NewMemoryLedger(), db: db, path: path, atRest: atRest}
	if err := f.loadFile(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("loading ledger %s: %w", path, err)
	}
	f.c = newBoltCommitter(db, 1024)
	f.journal = fileLedgerJournal{c: f.c, atRest: atRest}
	return f, nil
}

// Undecryptable is how many records the ledger could not decrypt when it
// was opened: sealed with a key that is not configured. They stay in the
// file, unlisted, until the key is configured again.
func (f *FileLedger) Undecryptable() int { return f.undecryptable }

func (f *FileLedger) loadFile() error {
	if err := f.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLedger)
		return err
	}); err != nil {
		return err
	}
	sl := f.atRest.Sealer()
	return f.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLedger).ForEach(func(k, v []byte) error {
			rec, _, err := decodeLedgerRecord(v, sl)
			if errors.Is(err, ErrUndecryptable) && rec.ID == string(k) {
				f.undecryptable++
				return nil
			}
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
type fileLedgerJournal struct {
	c      *boltCommitter
	atRest *AtRest
}

func (j fileLedgerJournal) putRecord(rec LedgerRecord) <-chan error {
	k, v := []byte(rec.ID), encodeLedgerRecord(rec, j.atRest.Sealer())
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
//
// A sealed record (version 2) keeps the id, status, times and version
// readable and seals the merchant, reference and data in one value (see
// seal.go), with the id as additional data.
const (
	ledgerRecordVersion = 1
	ledgerRecordSealed  = 2
)

// ledgerAAD is the additional data a ledger record is sealed with.
func ledgerAAD(id string) string { return "qrphgate ledger\x00" + id }

func encodeLedgerRecord(rec LedgerRecord, sl *Sealer) []byte {
	if sl != nil {
		b := make([]byte, 0, 96+len(rec.ID)+len(rec.Status)+len(rec.Merchant)+len(rec.Reference)+len(rec.Data))
		b = append(b, ledgerRecordSealed)
		b = appendString(b, rec.ID)
		b = appendString(b, rec.Status)
		b = binary.AppendVarint(b, unixNano(rec.Created))
		b = binary.AppendVarint(b, unixNano(rec.Due))
		b = binary.AppendVarint(b, rec.Version)
		return append(b, sl.Seal(ledgerAAD(rec.ID), packFields([]byte(rec.Merchant), []byte(rec.Reference), rec.Data))...)
	}
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

// decodeLedgerRecord reads a record; sealed tells whether it was sealed,
// and with which key (SealedKeyID) through its returned sealed value. A
// sealed record sl cannot open is ErrUndecryptable, with its id set.
func decodeLedgerRecord(b []byte, sl *Sealer) (rec LedgerRecord, sealed []byte, err error) {
	if len(b) > 0 && b[0] == ledgerRecordSealed {
		d := decoder{b: b[1:]}
		rec.ID, rec.Status = string(d.bytes()), string(d.bytes())
		rec.Created, rec.Due, rec.Version = fromUnixNano(d.varint()), fromUnixNano(d.varint()), d.varint()
		if d.err || len(d.b) == 0 {
			return LedgerRecord{}, nil, errCorruptRecord
		}
		sealed = d.b
		if sl == nil {
			return LedgerRecord{ID: rec.ID}, sealed, errNoSealer
		}
		plain, _, err := sl.Open(ledgerAAD(rec.ID), sealed)
		if err != nil {
			return LedgerRecord{ID: rec.ID}, sealed, err
		}
		f, err := unpackFields(plain, 3)
		if err != nil {
			return LedgerRecord{}, nil, err
		}
		rec.Merchant, rec.Reference, rec.Data = string(f[0]), string(f[1]), f[2]
		if checkLedgerRecord(rec) != nil || rec.Version < 1 {
			return LedgerRecord{}, nil, errCorruptRecord
		}
		return rec, sealed, nil
	}
	rec, err = decodePlainLedgerRecord(b)
	return rec, nil, err
}

func decodePlainLedgerRecord(b []byte) (LedgerRecord, error) {
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

// Reseal implements Resealer for the file ledger: it walks the records in
// id order (the cursor is the last id examined) and rewrites, in one
// commit per batch, those stored plain or with an older key.
func (f *FileLedger) Reseal(_ context.Context, sl *Sealer, cursor string, max int) (string, ResealStats, error) {
	type rewrite struct{ id, old, rec []byte }
	var (
		st     ResealStats
		writes []rewrite
		next   string
	)
	err := f.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLedger).Cursor()
		k, v := c.First()
		if cursor != "" {
			if k, v = c.Seek([]byte(cursor)); k != nil && string(k) == cursor {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			st.Checked++
			rec, sealed, err := decodeLedgerRecord(v, sl)
			switch {
			case errors.Is(err, ErrUndecryptable):
				st.Undecryptable++
			case err != nil:
				return fmt.Errorf("record %q: %w", k, err)
			case sealed == nil || !sl.current(sealed):
				writes = append(writes, rewrite{append([]byte(nil), k...), append([]byte(nil), v...), encodeLedgerRecord(rec, sl)})
			}
			if st.Checked == max {
				next = string(k)
				return nil
			}
		}
		return nil
	})
	if err != nil || len(writes) == 0 {
		return next, st, err
	}
	err = f.c.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLedger)
		for _, w := range writes {
			if !bytes.Equal(b.Get(w.id), w.old) {
				st.Raced++
				continue
			}
			if err := b.Put(w.id, w.rec); err != nil {
				return err
			}
			st.Resealed++
		}
		if st.Resealed > 0 {
			return markCompact(tx)
		}
		return nil
	})
	return next, st, err
}

// Interface guards.
var (
	_ Ledger   = (*FileLedger)(nil)
	_ Resealer = (*FileLedger)(nil)
)
