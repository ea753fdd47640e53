package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Reseal implements Resealer for the file spool: it walks the pending
// events, then the dead letters, then the history; the cursor is the
// bucket's name and the last id examined. Each batch is one commit.
func (s *BoltSpool) Reseal(_ context.Context, sl *Sealer, cursor string, max int) (string, ResealStats, error) {
	buckets := [][]byte{bucketPending, bucketDead, bucketDelivered}
	bi, after := 0, ""
	if cursor != "" {
		name, id, _ := strings.Cut(cursor, "\x00")
		bi = slices.IndexFunc(buckets, func(b []byte) bool { return string(b) == name })
		if bi < 0 || id == "" {
			return "", ResealStats{}, fmt.Errorf("spool: bad reseal cursor")
		}
		after = id
	}
	type rewrite struct {
		bucket, id, old, rec []byte
	}
	var (
		st     ResealStats
		writes []rewrite
		next   string
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		for ; bi < len(buckets); bi, after = bi+1, "" {
			c := tx.Bucket(buckets[bi]).Cursor()
			k, v := c.First()
			if after != "" {
				k, v = c.Seek([]byte(after))
				if k != nil && string(k) == after {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				st.Checked++
				ev, err := decodeEvent(v, sl, false)
				if err != nil {
					return fmt.Errorf("event %q: %w", k, err)
				}
				switch {
				case ev.payment.sealed != nil && sl.current(ev.payment.sealed):
				case ev.payment.sealed != nil && openPayment(sl, &ev, ev.payment.sealed, ev.payment.refBlind) != nil:
					st.Undecryptable++
				default:
					writes = append(writes, rewrite{buckets[bi], append([]byte(nil), k...), append([]byte(nil), v...), encodeEvent(&ev, sl)})
				}
				if st.Checked == max {
					next = string(buckets[bi]) + "\x00" + string(k)
					return nil
				}
			}
		}
		return nil
	})
	if err != nil || len(writes) == 0 {
		return next, st, err
	}
	err = s.write(func(tx *bolt.Tx) error {
		for _, w := range writes {
			b := tx.Bucket(w.bucket)
			if !bytes.Equal(b.Get(w.id), w.old) {
				st.Raced++ // changed (or gone) since it was read
				continue
			}
			if err := b.Put(w.id, w.rec); err != nil {
				return err
			}
			st.Resealed++
		}
		if st.Resealed > 0 {
			return markCompact(tx) // the old bytes linger in free pages
		}
		return nil
	})
	return next, st, err
}

// Interface guard.
var _ Resealer = (*BoltSpool)(nil)
