package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// Buckets of the file store.
var (
	bucketBudget = []byte("budget") // budget key -> admitted call times
	bucketIdem   = []byte("idem")   // idempotency key -> claim
)

// FileOptions tune OpenFile; the zero value is the production setting.
type FileOptions struct {
	// Clock is the store's time source; clock.Real() when nil.
	Clock clock.Clock

	// LockTimeout is how long to wait for another process to release the
	// file; 5s when zero.
	LockTimeout time.Duration

	// AtRest seals the idempotent answers (and their keys, which hold the
	// merchant's reference) when it holds a Sealer; nil or empty: plain.
	AtRest *AtRest
}

// FileStore implements RateBudget and Idempotency in one bbolt file, so a
// single sidecar keeps its rate budget and its idempotency cache across
// restarts: a restart can neither forget the calls made in the current
// window (and exceed the provider's limit) nor the answers it may replay.
//
// It is the Memory store with a journal: reads are served from memory, and
// every admitted call, claim, answer and release is written to the file
// (group commit, fsynced) before the method returns. The file is locked by
// one process; replicas share state through Redis instead.
type FileStore struct {
	mem  *Memory
	db   *bolt.DB
	c    *boltCommitter
	path string
	// undecryptable counts the sealed answers the load could not open
	// (the key that sealed them is not configured): left on disk, unused.
	undecryptable int
}

// OpenFile opens (creating if needed) the file store at path and loads it,
// dropping expired answers and claims.
func OpenFile(path string, o FileOptions) (*FileStore, error) {
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	db, err := openBoltFile(path, "store", o.LockTimeout)
	if err != nil {
		return nil, err
	}
	f := &FileStore{mem: NewMemory(o.Clock), db: db, path: path}
	if err := f.load(o.Clock.Now(), o.AtRest.Sealer()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("loading store %s: %w", path, err)
	}
	f.c = newBoltCommitter(db, 1024)
	f.mem.journal = fileJournal{c: f.c, atRest: o.AtRest}
	return f, nil
}

// Undecryptable is how many idempotent answers the store could not
// decrypt when it was opened: sealed with a key that is not configured.
// They are not used (a request with their reference is a new call) and
// leave the file when they expire.
func (f *FileStore) Undecryptable() int { return f.undecryptable }

func (f *FileStore) load(now time.Time, sl *Sealer) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		budgets, err := tx.CreateBucketIfNotExists(bucketBudget)
		if err != nil {
			return err
		}
		idem, err := tx.CreateBucketIfNotExists(bucketIdem)
		if err != nil {
			return err
		}
		err = budgets.ForEach(func(k, v []byte) error {
			log, err := decodeLog(v)
			if err != nil {
				return fmt.Errorf("budget %q: %w", k, err)
			}
			f.mem.budgets[string(k)] = log
			return nil
		})
		if err != nil {
			return err
		}
		var expired [][]byte
		err = idem.ForEach(func(k, v []byte) error {
			key, c, err := decodeClaim(string(k), v, sl)
			if errors.Is(err, ErrUndecryptable) {
				if !now.Before(c.expires) {
					expired = append(expired, k)
				} else {
					f.undecryptable++
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("idempotency record %x: %w", sha256.Sum256(k), err)
			}
			if !now.Before(c.expires) {
				expired = append(expired, k)
				return nil
			}
			f.mem.claims[key] = c
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := idem.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Path is the store file's path.
func (f *FileStore) Path() string { return f.path }

// Take implements RateBudget.
func (f *FileStore) Take(ctx context.Context, key string, limit int, window time.Duration) (Grant, error) {
	return f.mem.Take(ctx, key, limit, window)
}

// Usage implements RateBudget.
func (f *FileStore) Usage(ctx context.Context, key string, window time.Duration) (int, error) {
	return f.mem.Usage(ctx, key, window)
}

// Begin implements Idempotency.
func (f *FileStore) Begin(ctx context.Context, key, fingerprint string, lease time.Duration) (Claim, error) {
	return f.mem.Begin(ctx, key, fingerprint, lease)
}

// Complete implements Idempotency.
func (f *FileStore) Complete(ctx context.Context, key, fingerprint string, value []byte, ttl time.Duration) error {
	return f.mem.Complete(ctx, key, fingerprint, value, ttl)
}

// Release implements Idempotency.
func (f *FileStore) Release(ctx context.Context, key, fingerprint string) error {
	return f.mem.Release(ctx, key, fingerprint)
}

// Get implements Idempotency.
func (f *FileStore) Get(ctx context.Context, key string) (Claim, error) {
	return f.mem.Get(ctx, key)
}

// Close waits for queued writes and closes the file.
func (f *FileStore) Close() error {
	if !f.c.close() {
		return nil
	}
	return f.db.Close()
}

// fileJournal writes a Memory's changes through the group committer.
type fileJournal struct {
	c      *boltCommitter
	atRest *AtRest
}

func (j fileJournal) putBudget(key string, log []time.Time) <-chan error {
	k, v := []byte(key), encodeLog(log)
	return j.c.enqueue(func(tx *bolt.Tx) error { return tx.Bucket(bucketBudget).Put(k, v) })
}

func (j fileJournal) deleteBudget(key string) <-chan error {
	k := []byte(key)
	return j.c.enqueue(func(tx *bolt.Tx) error { return tx.Bucket(bucketBudget).Delete(k) })
}

// putClaim writes the claim under its record name (see idemRecordKey),
// and drops it under the names it may have had before (plain, or another
// key's blind index), so a key has one record whatever the keys did.
func (j fileJournal) putClaim(key string, c memClaim) <-chan error {
	sl := j.atRest.Sealer()
	k, v := idemRecordKey(sl, key), encodeClaim(key, c, sl)
	others := idemRecordKeys(sl, key)[1:]
	return j.c.enqueue(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdem)
		for _, o := range others {
			if err := b.Delete(o); err != nil {
				return err
			}
		}
		return b.Put(k, v)
	})
}

func (j fileJournal) deleteClaim(key string) <-chan error {
	ks := idemRecordKeys(j.atRest.Sealer(), key)
	return j.c.enqueue(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdem)
		for _, k := range ks {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// idemRecordKey is the bbolt key of idempotency key key: the key itself
// (it holds the merchant's reference) when plain, "s:" and its blind
// index when sealed.
func idemRecordKey(sl *Sealer, key string) []byte {
	if sl == nil {
		return []byte(key)
	}
	return []byte("s:" + sl.Blind(key))
}

// idemRecordKeys are every name key's record may have: the current one
// first, then the plain key and the blind index of every other key.
func idemRecordKeys(sl *Sealer, key string) [][]byte {
	out := [][]byte{idemRecordKey(sl, key)}
	if sl == nil {
		return out
	}
	out = append(out, []byte(key))
	for _, b := range sl.Blinds(key)[1:] {
		out = append(out, []byte("s:"+b))
	}
	return out
}

// idemAAD is the additional data an idempotent answer is sealed with: the
// name it is stored under (the blind index), so a sealed answer copied to
// another key's record does not open.
func idemAAD(name string) string { return "qrphgate idempotency\x00" + name }

// The file store's records: a version byte, then varints. A budget is its
// call times (Unix ns, the first absolute, the rest as deltas); a claim is
// its state, expiry (Unix ns), fingerprint and value (length-prefixed).
//
// A sealed claim (version 2) keeps its state and expiry readable (so an
// expired one is dropped without a key) and seals its key, fingerprint and
// value in one value (see seal.go); its bbolt key is the blind index.
const (
	fileRecordVersion = 1
	fileRecordSealed  = 2
)

func encodeLog(log []time.Time) []byte {
	b := make([]byte, 0, 1+len(log)*4+10)
	b = append(b, fileRecordVersion)
	b = binary.AppendUvarint(b, uint64(len(log)))
	var prev int64
	for _, t := range log {
		n := t.UnixNano()
		b = binary.AppendVarint(b, n-prev)
		prev = n
	}
	return b
}

func decodeLog(b []byte) ([]time.Time, error) {
	if len(b) == 0 || b[0] != fileRecordVersion {
		return nil, errCorruptRecord
	}
	d := decoder{b: b[1:]}
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) { // every entry takes at least a byte
		return nil, errCorruptRecord
	}
	log := make([]time.Time, 0, n)
	var prev int64
	for i := uint64(0); i < n; i++ {
		prev += d.varint()
		log = append(log, time.Unix(0, prev))
	}
	if d.err || len(d.b) != 0 {
		return nil, errCorruptRecord
	}
	return log, nil
}

func encodeClaim(key string, c memClaim, sl *Sealer) []byte {
	b := make([]byte, 0, 16+len(c.Fingerprint)+len(c.Value))
	if sl != nil {
		b = append(b, fileRecordSealed, byte(c.State))
		b = binary.AppendVarint(b, c.expires.UnixNano())
		name := string(idemRecordKey(sl, key))
		return append(b, sl.Seal(idemAAD(name), packFields([]byte(key), []byte(c.Fingerprint), c.Value))...)
	}
	b = append(b, fileRecordVersion, byte(c.State))
	b = binary.AppendVarint(b, c.expires.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(c.Fingerprint)))
	b = append(b, c.Fingerprint...)
	b = binary.AppendUvarint(b, uint64(len(c.Value)))
	return append(b, c.Value...)
}

// decodeClaim reads the record stored under bbolt key k and returns its
// idempotency key and claim. A sealed record that sl cannot open is
// ErrUndecryptable, with the claim's expiry set.
func decodeClaim(k string, b []byte, sl *Sealer) (string, memClaim, error) {
	if len(b) < 2 || (b[0] != fileRecordVersion && b[0] != fileRecordSealed) {
		return "", memClaim{}, errCorruptRecord
	}
	state := ClaimState(b[1])
	if state != Claimed && state != Completed {
		return "", memClaim{}, errCorruptRecord
	}
	d := decoder{b: b[2:]}
	c := memClaim{Claim: Claim{State: state}}
	c.expires = time.Unix(0, d.varint())
	if b[0] == fileRecordSealed {
		if d.err {
			return "", memClaim{}, errCorruptRecord
		}
		if sl == nil {
			return "", c, errNoSealer
		}
		plain, _, err := sl.Open(idemAAD(k), d.b)
		if err != nil {
			return "", c, err
		}
		f, err := unpackFields(plain, 3)
		if err != nil {
			return "", memClaim{}, err
		}
		c.Fingerprint = string(f[1])
		if len(f[2]) > 0 {
			c.Value = f[2]
		}
		return string(f[0]), c, nil
	}
	c.Fingerprint = string(d.bytes())
	if v := d.bytes(); len(v) > 0 {
		c.Value = append([]byte(nil), v...)
	}
	if d.err || len(d.b) != 0 {
		return "", memClaim{}, errCorruptRecord
	}
	return k, c, nil
}

// Interface guards.
var (
	_ RateBudget  = (*FileStore)(nil)
	_ Idempotency = (*FileStore)(nil)
)
