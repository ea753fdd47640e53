package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// testAtRestKey is an obviously fake 32-byte at-rest key.
func testAtRestKey(n int) []byte { return []byte(fmt.Sprintf("FAKE-TEST-at-rest-key-%010d", n)) }

func testSealer(t testing.TB, keys ...int) *store.Sealer {
	t.Helper()
	var kb [][]byte
	for _, k := range keys {
		kb = append(kb, testAtRestKey(k))
	}
	s, err := store.NewSealer(kb...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The payment data of secretEvent: none of it may appear in what a
// sealed back end writes.
const (
	secretRef    = "ORDER-SECRET-REF-7731"
	secretAmount = "98765.43"
	secretCode   = "SCRT-7731-AAAA-BBBB"
)

var secrets = []string{secretRef, secretAmount, secretCode, `"payload-marker"`}

func secretEvent(id string) store.SpoolEvent {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	return store.SpoolEvent{
		ID: id, Action: "QRPH_SUCCESS", Reference: secretRef, ActivationCode: secretCode,
		Body:     []byte(`{"action":"QRPH_SUCCESS","referenceNumber":"` + secretRef + `","amount":"` + secretAmount + `","x":"payload-marker"}`),
		Received: now, RetryFrom: now, NextAttempt: now,
	}
}

// noSecrets fails when b holds any of the payment data.
func noSecrets(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds %q in plain text", where, s)
		}
	}
}

func TestSealer(t *testing.T) {
	s1, s21 := testSealer(t, 1), testSealer(t, 2, 1)
	plain := []byte("the payload")
	sealed := s1.Seal("rec-a", plain)
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got, stale, err := s1.Open("rec-a", sealed); err != nil || stale || string(got) != "the payload" {
		t.Fatalf("open: %q %v %v", got, stale, err)
	}
	if bytes.Equal(s1.Seal("rec-a", plain), sealed) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	// A rotation: the new key first opens the old key's values, stale.
	if got, stale, err := s21.Open("rec-a", sealed); err != nil || !stale || string(got) != "the payload" {
		t.Fatalf("open after rotation: %q stale=%v %v", got, stale, err)
	}
	if _, stale, err := s21.Open("rec-a", s21.Seal("rec-a", plain)); err != nil || stale {
		t.Fatalf("a value sealed with the sealing key is stale=%v (%v)", stale, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string]struct {
		s         *store.Sealer
		aad       string
		v         []byte
		wantInErr string
	}{
		"another record's key": {s1, "rec-b", sealed, "authentication failed"},
		"tampered":             {s1, "rec-a", tampered, "authentication failed"},
		"an unknown key":       {testSealer(t, 3), "rec-a", sealed, "not configured"},
		"not sealed":           {s1, "rec-a", []byte("plain"), "not a sealed value"},
		"truncated":            {s1, "rec-a", sealed[:20], "not a sealed value"},
	} {
		_, _, err := c.s.Open(c.aad, c.v)
		if !errors.Is(err, store.ErrUndecryptable) || !strings.Contains(err.Error(), c.wantInErr) {
			t.Errorf("%s: %v, want ErrUndecryptable (%s)", name, err, c.wantInErr)
		}
	}
	if id := store.SealedKeyID(sealed); id != s1.KeyIDs()[0] || id != s21.KeyIDs()[1] {
		t.Fatalf("key id %q, want %v / %v", id, s1.KeyIDs(), s21.KeyIDs())
	}
	// The blind index: stable per key, different between keys, "" for "".
	if s1.Blind(secretRef) != s1.Blind(secretRef) || s1.Blind(secretRef) == testSealer(t, 2).Blind(secretRef) ||
		strings.Contains(s1.Blind(secretRef), secretRef) || s1.Blind("") != "" {
		t.Fatal("blind index is not a keyed digest")
	}
	if b := s21.Blinds(secretRef); len(b) != 2 || b[0] != s21.Blind(secretRef) || b[1] != s1.Blind(secretRef) {
		t.Fatalf("Blinds = %v", b)
	}
	for name, keys := range map[string][][]byte{
		"none":       nil,
		"short":      {[]byte("FAKE-short")},
		"duplicated": {testAtRestKey(1), testAtRestKey(2), testAtRestKey(1)},
	} {
		if _, err := store.NewSealer(keys...); err == nil {
			t.Errorf("NewSealer(%s) accepted", name)
		}
	}
}

func openBoltWith(t *testing.T, path string, o store.BoltOptions) *store.BoltSpool {
	t.Helper()
	o.LockTimeout, o.SweepEvery = 200*time.Millisecond, -1
	s, err := store.OpenBolt(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The conformance suite, every record sealed.
func TestBoltSpoolSealed(t *testing.T) {
	at := store.NewAtRest(testSealer(t, 1))
	storetest.Spool(t, storetest.SpoolHarness{
		Open: func(t *testing.T) store.Spool {
			return openBoltWith(t, filepath.Join(t.TempDir(), "spool.db"), store.BoltOptions{AtRest: at})
		},
		Reopen: func(t *testing.T, s store.Spool) store.Spool {
			path := s.(*store.BoltSpool).Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openBoltWith(t, path, store.BoltOptions{AtRest: at})
		},
	})
}

func TestRedisSpoolSealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{AtRest: store.NewAtRest(testSealer(t, 1))})
		storetest.Spool(t, storetest.SpoolHarness{
			Open: func(t *testing.T) store.Spool { return openTestRedisSpool(t, r, "", 0) },
			Reopen: func(t *testing.T, s store.Spool) store.Spool {
				name := s.(*store.RedisSpool).Name()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return openTestRedisSpool(t, r, name, 0)
			},
		})
	})
}

// fillSpool puts four secret events and leaves one pending, one retried,
// one dead and one delivered (kept in the history).
func fillSpool(t *testing.T, s store.Spool) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		if err := s.Put(ctx, secretEvent(fmt.Sprintf("evt_%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	now := secretEvent("x").Received
	if _, err := s.Claim(ctx, now, time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.Retry(ctx, "evt_2", 1, now, "HTTP 500"),
		s.Bury(ctx, "evt_3", 9, now, "HTTP 500"),
		s.Archive(ctx, "evt_4", now),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkReadable claims, lists and replays the events fillSpool left and
// checks their payment data came back whole.
func checkReadable(t *testing.T, s store.Spool) {
	t.Helper()
	ctx := context.Background()
	now := secretEvent("x").Received.Add(time.Hour)
	page, err := s.Events(ctx, store.EventQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.Status() == store.StatusPending {
			continue
		}
		if _, err := s.Replay(ctx, ev.ID, now); err != nil {
			t.Fatalf("replay %s: %v", ev.ID, err)
		}
	}
	evs, err := s.Claim(ctx, now.Add(time.Hour), time.Minute, 10)
	if err != nil || len(evs) != 4 {
		t.Fatalf("claim: %d events, %v", len(evs), err)
	}
	want := secretEvent("x")
	for _, ev := range evs {
		if ev.Undecryptable != "" || ev.Reference != secretRef || ev.ActivationCode != secretCode || !bytes.Equal(ev.Body, want.Body) {
			t.Fatalf("event %s read back as %+v", ev.ID, ev)
		}
	}
}

// A sealed file spool holds no payment data: not in the file's bytes, not
// in any bbolt key or value; and it reads back whole after a reopen.
func TestBoltSpoolAtRestFileHoldsNoPaymentData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	at := store.NewAtRest(testSealer(t, 1))
	s := openBoltWith(t, path, store.BoltOptions{AtRest: at})
	fillSpool(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	noSecrets(t, "the spool file", raw)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				n++
				noSecrets(t, fmt.Sprintf("bucket %s key %q", name, k), append(bytes.Clone(k), v...))
				return nil
			})
		})
	})
	_ = db.Close()
	if n < 4 {
		t.Fatalf("only %d records in the file", n)
	}
	s = openBoltWith(t, path, store.BoltOptions{AtRest: at})
	defer s.Close()
	checkReadable(t, s)
}

// rawRedis returns every key under prefix and what it holds (its values
// and its DUMP), on every primary of a Cluster.
func rawRedis(t *testing.T, r *store.Redis) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	prefix := store.RedisPrefix(r)
	out := map[string][]byte{}
	var mu sync.Mutex
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			var b bytes.Buffer
			b.WriteString(k)
			switch c.Type(ctx, k).Val() {
			case "hash":
				for f, v := range c.HGetAll(ctx, k).Val() {
					b.WriteString(f + "=" + v + "\n")
				}
			case "string":
				b.WriteString(c.Get(ctx, k).Val())
			case "zset":
				b.WriteString(strings.Join(c.ZRange(ctx, k, 0, -1).Val(), "\n"))
			case "set":
				b.WriteString(strings.Join(c.SMembers(ctx, k).Val(), "\n"))
			}
			b.WriteString(c.Dump(ctx, k).Val())
			mu.Lock()
			out[k] = b.Bytes()
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := store.RedisClient(r).(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A sealed Redis spool holds no payment data in any key or value (HGETALL,
// GET, DUMP), on one server, a Cluster and Sentinel.
func TestRedisSpoolAtRestHoldsNoPaymentData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{AtRest: store.NewAtRest(testSealer(t, 1))})
		s := openTestRedisSpool(t, r, "", 0)
		fillSpool(t, s)
		raw := rawRedis(t, r)
		if len(raw) < 4 {
			t.Fatalf("only %d keys", len(raw))
		}
		for k, v := range raw {
			noSecrets(t, "key "+k, v)
		}
		checkReadable(t, s)
	})
}

// A spool written plain is read, and the pass seals it; then its file
// holds no payment data.
func TestBoltSpoolPlainIsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openBoltWith(t, path, store.BoltOptions{})
	fillSpool(t, s)
	_ = s.Close()
	at := store.NewAtRest(testSealer(t, 1))
	s = openBoltWith(t, path, store.BoltOptions{AtRest: at})
	st := resealAll(t, s, at.Sealer())
	if st.Resealed != 4 || st.Undecryptable != 0 {
		t.Fatalf("pass: %+v, want 4 resealed", st)
	}
	if st := resealAll(t, s, at.Sealer()); st.Resealed != 0 || st.Checked != 4 {
		t.Fatalf("second pass: %+v, want nothing to do", st)
	}
	_ = s.Close()
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, []byte(secretRef)) {
		t.Log("the rewritten records' old bytes are already gone from the free pages")
	}
	// The next open compacts the file: the old bytes go with the free pages.
	s = openBoltWith(t, path, store.BoltOptions{AtRest: at})
	_ = s.Close()
	raw, _ = os.ReadFile(path)
	noSecrets(t, "the migrated spool file", raw)
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("the compaction's temporary file is left: %v", err)
	}
	s = openBoltWith(t, path, store.BoltOptions{AtRest: at})
	defer s.Close()
	checkReadable(t, s)
}

// resealAll runs a whole pass, a record per batch.
func resealAll(t *testing.T, r store.Resealer, sl *store.Sealer) store.ResealStats {
	t.Helper()
	var total store.ResealStats
	cursor := ""
	for i := 0; ; i++ {
		next, st, err := r.Reseal(context.Background(), sl, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		total.Checked += st.Checked
		total.Resealed += st.Resealed
		total.Undecryptable += st.Undecryptable
		total.Raced += st.Raced
		if next == "" {
			return total
		}
		if i > 1000 {
			t.Fatal("the pass does not end")
		}
		cursor = next
	}
}

// A rotation on either back end: records sealed with key 1 read with keys
// (2, 1); the pass seals them with key 2; then key 2 alone reads them, and
// key 1 alone reads none (each is undecryptable, never delivered).
func TestSpoolKeyRotation(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "spool.db")
		at := store.NewAtRest(testSealer(t, 1))
		s := openBoltWith(t, path, store.BoltOptions{AtRest: at})
		defer func() { _ = s.Close() }()
		testRotation(t, s, at)
	})
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		at := store.NewAtRest(testSealer(t, 1))
		r := openBackend(t, b, store.RedisOptions{AtRest: at})
		testRotation(t, openTestRedisSpool(t, r, "", 0), at)
	})
}

func testRotation(t *testing.T, s interface {
	store.Spool
	store.Resealer
}, at *store.AtRest) {
	fillSpool(t, s)
	at.Set(testSealer(t, 2, 1))
	if st := resealAll(t, s, at.Sealer()); st.Resealed != 4 || st.Undecryptable != 0 {
		t.Fatalf("rotation pass: %+v, want 4 resealed", st)
	}
	at.Set(testSealer(t, 1)) // the old key alone: nothing opens
	ctx := context.Background()
	now := secretEvent("x").Received.Add(time.Hour)
	evs, err := s.Claim(ctx, now, time.Minute, 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("claim: %d %v", len(evs), err)
	}
	for _, ev := range evs {
		if ev.Undecryptable == "" || ev.Reference != "" || len(ev.Body) != 0 {
			t.Fatalf("an event sealed with a key not configured read as %+v", ev)
		}
		if !strings.Contains(ev.Undecryptable, "not configured") {
			t.Fatalf("reason %q", ev.Undecryptable)
		}
	}
	// It can still be dead-lettered (its sealed part kept as it is) and
	// listed; a pass leaves it alone.
	if err := s.Bury(ctx, evs[0].ID, 1, now, "undecryptable: "+evs[0].Undecryptable); err != nil {
		t.Fatal(err)
	}
	if st := resealAll(t, s, at.Sealer()); st.Undecryptable != 4 || st.Resealed != 0 {
		t.Fatalf("pass with the wrong key: %+v, want 4 undecryptable", st)
	}
	page, err := s.Events(ctx, store.EventQuery{Limit: 10})
	if err != nil || len(page.Events) != 4 {
		t.Fatalf("events: %d %v", len(page.Events), err)
	}
	at.Set(testSealer(t, 2)) // the new key alone reads everything
	checkReadable(t, s)
	// The history finds an event by reference through its blind index.
	page, err = s.Events(ctx, store.EventQuery{Limit: 10, Reference: secretRef})
	if err != nil || len(page.Events) != 4 || page.Events[0].Reference != secretRef {
		t.Fatalf("events by reference: %v %v", page.Events, err)
	}
	at.Set(nil) // the key removed: undecryptable, still scheduled
	evs, _ = s.Claim(ctx, now.Add(3*time.Hour), time.Minute, 10)
	if len(evs) != 4 || evs[0].Undecryptable == "" {
		t.Fatalf("claim without a key: %+v", evs)
	}
}

// The idempotency and ledger suites, every record sealed.
func TestFileIdempotencySealed(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC))
	f, err := store.OpenFile(filepath.Join(t.TempDir(), "store.db"), store.FileOptions{Clock: clk, AtRest: store.NewAtRest(testSealer(t, 1))})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	storetest.Idempotency(t, f, storetest.Harness{Unit: time.Minute, Advance: clk.Advance})
}

func TestRedisIdempotencySealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		storetest.Idempotency(t, openBackend(t, b, store.RedisOptions{AtRest: store.NewAtRest(testSealer(t, 1))}), realHarness)
	})
}

func TestFileLedgerSealed(t *testing.T) {
	at := store.NewAtRest(testSealer(t, 1))
	open := func(t *testing.T, path string) store.Ledger {
		l, err := store.OpenFileLedger(path, 0, at)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	storetest.Ledger(t, storetest.LedgerHarness{
		Open: func(t *testing.T) store.Ledger { return open(t, filepath.Join(t.TempDir(), "ledger.db")) },
		Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
			path := l.(*store.FileLedger).Path()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, path)
		},
	})
}

func TestRedisLedgerSealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		at := store.NewAtRest(testSealer(t, 1))
		storetest.Ledger(t, storetest.LedgerHarness{
			Open: func(t *testing.T) store.Ledger {
				return store.NewRedisLedger(openBackend(t, b, store.RedisOptions{AtRest: at}))
			},
			Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				prefix := store.LedgerRedisPrefix(l.(*store.RedisLedger))
				return store.NewRedisLedger(openBackend(t, b, store.RedisOptions{Prefix: prefix, AtRest: at}))
			},
		})
	})
}

// An idempotent answer (the QR, amount and reference) and a ledger record
// leave no payment data in the file or in Redis, and read back whole.
const secretAnswer = `{"id":"tx-secret-1","qrBody":"iVBORw0KGgo","merchantReferenceNumber":"` + secretRef + `","amount":"` + secretAmount + `","x":"payload-marker"}`

func secretIdemKey() string { return "idem:sandbox:acct:0123456789ab:" + secretRef }

func secretLedgerRecord() store.LedgerRecord {
	return store.LedgerRecord{ID: "tx-secret-1", Merchant: secretCode, Reference: secretRef, Status: "pending",
		Created: time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC), Data: []byte(secretAnswer)}
}

func fillStoreAndLedger(t *testing.T, idem store.Idempotency, l store.Ledger) {
	t.Helper()
	ctx := context.Background()
	if c, err := idem.Begin(ctx, secretIdemKey(), "fp", time.Minute); err != nil || c.State != store.Claimed {
		t.Fatalf("begin: %+v %v", c, err)
	}
	if err := idem.Complete(ctx, secretIdemKey(), "fp", []byte(secretAnswer), 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	rec, err := l.Insert(ctx, secretLedgerRecord())
	if err != nil {
		t.Fatal(err)
	}
	rec.Status = "paid"
	if _, err := l.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
}

func checkStoreAndLedger(t *testing.T, idem store.Idempotency, l store.Ledger) {
	t.Helper()
	ctx := context.Background()
	c, err := idem.Get(ctx, secretIdemKey())
	if err != nil || c.State != store.Completed || string(c.Value) != secretAnswer {
		t.Fatalf("idempotent answer read back as %+v %v", c, err)
	}
	recs, err := l.ByReference(ctx, secretRef, 10)
	if err != nil || len(recs) != 1 || recs[0].Merchant != secretCode || string(recs[0].Data) != secretAnswer || recs[0].Status != "paid" {
		t.Fatalf("ledger by reference: %+v %v", recs, err)
	}
	page, err := l.List(ctx, store.LedgerQuery{Reference: secretRef, Limit: 5})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("ledger list by reference: %+v %v", page, err)
	}
}

func TestFileStoreAndLedgerAtRestHoldNoPaymentData(t *testing.T) {
	dir := t.TempDir()
	at := store.NewAtRest(testSealer(t, 1))
	open := func() (*store.FileStore, *store.FileLedger) {
		f, err := store.OpenFile(filepath.Join(dir, "store.db"), store.FileOptions{AtRest: at})
		if err != nil {
			t.Fatal(err)
		}
		l, err := store.OpenFileLedger(filepath.Join(dir, "ledger.db"), 0, at)
		if err != nil {
			t.Fatal(err)
		}
		return f, l
	}
	f, l := open()
	fillStoreAndLedger(t, f, l)
	_, _ = f.Close(), l.Close()
	for _, name := range []string{"store.db", "ledger.db"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		noSecrets(t, name, raw)
	}
	f, l = open()
	defer func() { _, _ = f.Close(), l.Close() }()
	checkStoreAndLedger(t, f, l)
}

func TestRedisStoreAndLedgerAtRestHoldNoPaymentData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		r := openBackend(t, b, store.RedisOptions{AtRest: store.NewAtRest(testSealer(t, 1))})
		l := store.NewRedisLedger(r)
		fillStoreAndLedger(t, r, l)
		raw := rawRedis(t, r)
		if len(raw) < 4 {
			t.Fatalf("only %d keys", len(raw))
		}
		for k, v := range raw {
			noSecrets(t, "key "+k, v)
		}
		checkStoreAndLedger(t, r, l)
	})
}

// Written plain, read sealed: the idempotent answer is found under its
// old name (so the reference is not sent upstream twice), and the pass
// seals the ledger; then nothing plain is left in Redis.
func TestRedisStoreAndLedgerPlainAreMigrated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b redisBackend) {
		at := store.NewAtRest(nil)
		r := openBackend(t, b, store.RedisOptions{AtRest: at})
		l := store.NewRedisLedger(r)
		fillStoreAndLedger(t, r, l)
		at.Set(testSealer(t, 1))
		checkStoreAndLedger(t, r, l)
		ctx := context.Background()
		if c, err := r.Begin(ctx, secretIdemKey(), "fp", time.Minute); err != nil || c.State != store.Completed || string(c.Value) != secretAnswer {
			t.Fatalf("begin after the keys changed: %+v %v (the plain answer must be found)", c, err)
		}
		if st := resealAll(t, l, at.Sealer()); st.Resealed != 1 {
			t.Fatalf("ledger pass: %+v", st)
		}
		// The plain answer expires with its ttl; drop it as time would.
		if err := store.RedisClient(r).Del(ctx, store.RedisPrefix(r)+"idem:"+secretIdemKey()).Err(); err != nil && b.name != "cluster" {
			t.Fatal(err)
		}
		for k, v := range rawRedis(t, r) {
			if strings.Contains(k, "idem:") {
				continue // the plain answer's key (cluster-tagged) left to its ttl
			}
			noSecrets(t, "key "+k, v)
		}
		recs, err := l.ByReference(ctx, secretRef, 10)
		if err != nil || len(recs) != 1 || string(recs[0].Data) != secretAnswer {
			t.Fatalf("ledger after the pass: %+v %v", recs, err)
		}
		// Rotated: a new key first; the old records read, the pass moves
		// them, then the new key alone reads them.
		at.Set(testSealer(t, 2, 1))
		checkLedgerRef(t, l)
		if st := resealAll(t, l, at.Sealer()); st.Resealed != 1 {
			t.Fatalf("rotation pass: %+v", st)
		}
		at.Set(testSealer(t, 2))
		checkLedgerRef(t, l)
		at.Set(testSealer(t, 3)) // a wrong key: undecryptable, an error, never plain text
		if _, err := l.ByReference(ctx, secretRef, 10); err != nil {
			t.Fatalf("by reference under a wrong key: %v (no record is indexed under it)", err)
		}
		if _, err := l.Get(ctx, "tx-secret-1"); !errors.Is(err, store.ErrUndecryptable) {
			t.Fatalf("get under a wrong key: %v, want ErrUndecryptable", err)
		}
	})
}

func checkLedgerRef(t *testing.T, l store.Ledger) {
	t.Helper()
	recs, err := l.ByReference(context.Background(), secretRef, 10)
	if err != nil || len(recs) != 1 || string(recs[0].Data) != secretAnswer || recs[0].Merchant != secretCode {
		t.Fatalf("ledger by reference: %+v %v", recs, err)
	}
}
