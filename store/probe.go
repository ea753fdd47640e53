package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Writability probes, for readiness checks: each makes a small durable
// write the way the back end's real writes are made, so that a full disk, a
// read-only file system, a Redis replica promoted away or out of memory
// shows before a webhook is refused for it.

var bucketHealth = []byte("health") // "probe" -> Unix ns of the last probe; "room" only during a probe

// ProbeRoom is how much the spool file's probe writes: the largest webhook
// body by default (max_body), so the probe fails when the spool has no
// room left for one. A few bytes would not show a full disk: bbolt writes
// them into pages the file already has.
const ProbeRoom = 64 << 10

// Probe proves the spool file takes a webhook: in the spool file itself,
// one transaction writes the probe's time and ProbeRoom bytes, fsynced
// (bbolt commits are), and a second removes the bytes again. On a full
// disk (or a quota) the first fails as a webhook's write would. It waits
// behind a commit in progress, as a webhook's write would.
func (s *BoltSpool) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(s.now().UnixNano()))
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketHealth)
		if err != nil {
			return err
		}
		if err := b.Put([]byte("probe"), v[:]); err != nil {
			return err
		}
		return b.Put([]byte("room"), make([]byte, ProbeRoom))
	})
	if err != nil {
		return fmt.Errorf("spool %s: probe write: %w", s.path, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHealth).Delete([]byte("room")) })
	if err != nil {
		return fmt.Errorf("spool %s: probe write: %w", s.path, err)
	}
	return nil
}

// ProbeWrite sets a key of its own (expiring after a minute): a server
// that answers PING but refuses writes (a read-only replica, maxmemory with
// noeviction) fails it.
func (r *Redis) ProbeWrite(ctx context.Context) error {
	if err := r.c.Set(ctx, r.keys.prefix+"health:probe", time.Now().UnixNano(), time.Minute).Err(); err != nil {
		return unavailable("probe write", err)
	}
	return nil
}
