package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// LedgerHarness opens the ledger back end under test.
type LedgerHarness struct {
	// Open returns an empty ledger; it is called once per subtest, and the
	// ledger is closed when the subtest ends.
	Open func(t *testing.T) store.Ledger
	// Reopen closes l and opens the same storage again, as a restart
	// would; nil for back ends that keep nothing.
	Reopen func(t *testing.T, l store.Ledger) store.Ledger
}

func ledgerRecord(id, ref, status string, created time.Time) store.LedgerRecord {
	return store.LedgerRecord{
		ID: id, Merchant: "TEST-0000-0000-0001", Reference: ref, Status: status, Created: created,
		Data: []byte(`{"id":"` + id + `"}`),
	}
}

func mustInsert(t *testing.T, l store.Ledger, recs ...store.LedgerRecord) {
	t.Helper()
	for _, rec := range recs {
		if _, err := l.Insert(context.Background(), rec); err != nil {
			t.Fatalf("insert %s: %v", rec.ID, err)
		}
	}
}

func recordIDs(recs []store.LedgerRecord) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

func sameIDs(t *testing.T, what string, got []store.LedgerRecord, want ...string) {
	t.Helper()
	if g := fmt.Sprint(recordIDs(got)); g != fmt.Sprint(want) {
		t.Fatalf("%s: %s, want %v", what, g, want)
	}
}

func sameRecord(t *testing.T, got, want store.LedgerRecord) {
	t.Helper()
	if got.ID != want.ID || got.Merchant != want.Merchant || got.Reference != want.Reference || got.Status != want.Status ||
		!got.Created.Equal(want.Created) || !got.Due.Equal(want.Due) || got.Version != want.Version || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("record differs:\n got %+v\nwant %+v", got, want)
	}
}

// Ledger runs the ledger conformance tests.
func Ledger(t *testing.T, h LedgerHarness) {
	ctx := context.Background()
	open := func(t *testing.T) store.Ledger {
		l := h.Open(t)
		t.Cleanup(func() { _ = l.Close() })
		return l
	}

	t.Run("insert then get returns the record intact", func(t *testing.T) {
		l := open(t)
		rec := ledgerRecord("tx-1", "ORDER-1", "pending", t0)
		rec.Due = t0.Add(15 * time.Minute)
		rec.Data = []byte{0, 0xff, '\n', '"', '{'}
		rec.Version = 42 // ignored: a new record is version 1
		got, err := l.Insert(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		want := rec
		want.Version = 1
		sameRecord(t, got, want)
		got, err = l.Get(ctx, "tx-1")
		if err != nil {
			t.Fatal(err)
		}
		sameRecord(t, got, want)
		got.Data[0] = 'x' // the caller's copy is its own
		if again, _ := l.Get(ctx, "tx-1"); again.Data[0] != 0 {
			t.Fatal("changing a returned record changed the stored one")
		}
		if _, err := l.Insert(ctx, ledgerRecord("tx-1", "OTHER", "paid", t0)); !errors.Is(err, store.ErrRecordExists) {
			t.Fatalf("second insert of tx-1: %v, want ErrRecordExists", err)
		}
		if _, err := l.Get(ctx, "nope"); !errors.Is(err, store.ErrRecordNotFound) {
			t.Fatalf("get of a missing id: %v", err)
		}
	})

	t.Run("records a back end cannot index are refused", func(t *testing.T) {
		l := open(t)
		for _, rec := range []store.LedgerRecord{
			ledgerRecord("", "R", "pending", t0),
			ledgerRecord("tx", "R", "", t0),
			ledgerRecord("tx", "R", "pending", time.Time{}),
			ledgerRecord(string(bytes.Repeat([]byte("x"), 257)), "R", "pending", t0),
		} {
			if _, err := l.Insert(ctx, rec); err == nil {
				t.Fatalf("inserted %+v", rec)
			}
		}
	})

	t.Run("update is a compare and swap on the version", func(t *testing.T) {
		l := open(t)
		rec := ledgerRecord("tx-1", "ORDER-1", "pending", t0)
		rec.Due = t0.Add(time.Minute)
		mustInsert(t, l, rec)
		cur, _ := l.Get(ctx, "tx-1")
		next := cur
		next.Status, next.Due, next.Data = "paid", time.Time{}, []byte(`{"paid":true}`)
		next.Merchant, next.Reference, next.Created = "OTHER", "OTHER", t0.Add(time.Hour) // fixed at insert
		got, err := l.Update(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		want := cur
		want.Status, want.Due, want.Data, want.Version = "paid", time.Time{}, []byte(`{"paid":true}`), 2
		sameRecord(t, got, want)
		stored, _ := l.Get(ctx, "tx-1")
		sameRecord(t, stored, want)
		if _, err := l.Update(ctx, next); !errors.Is(err, store.ErrConflict) { // still version 1
			t.Fatalf("update with a stale version: %v, want ErrConflict", err)
		}
		missing := next
		missing.ID = "nope"
		if _, err := l.Update(ctx, missing); !errors.Is(err, store.ErrRecordNotFound) {
			t.Fatalf("update of a missing id: %v", err)
		}
	})

	t.Run("of concurrent updates from one version exactly one wins", func(t *testing.T) {
		l := open(t)
		mustInsert(t, l, ledgerRecord("tx-1", "ORDER-1", "pending", t0))
		cur, _ := l.Get(ctx, "tx-1")
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := cur
				next.Status = "expired"
				next.Data = []byte(fmt.Sprint(i))
				_, err := l.Update(ctx, next)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Errorf("update: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != 15 {
			t.Fatalf("%d updates won and %d conflicted; want 1 and 15", wins, conflicts)
		}
		if c, _ := l.Counts(ctx); c["expired"] != 1 || c["pending"] != 0 {
			t.Fatalf("counts %v", c)
		}
	})

	t.Run("due lists a status's records due by a time, earliest first", func(t *testing.T) {
		l := open(t)
		for i, d := range []time.Duration{3, 1, 2, 5} {
			rec := ledgerRecord(fmt.Sprintf("p%d", i), "R", "pending", t0)
			rec.Due = t0.Add(d * time.Minute)
			mustInsert(t, l, rec)
		}
		other := ledgerRecord("x1", "R", "expired", t0)
		other.Due = t0
		none := ledgerRecord("x2", "R", "pending", t0) // no due time
		mustInsert(t, l, other, none)
		due := func(status string, at time.Duration, max int) []store.LedgerRecord {
			t.Helper()
			recs, err := l.Due(ctx, status, t0.Add(at*time.Minute), max)
			if err != nil {
				t.Fatal(err)
			}
			return recs
		}
		sameIDs(t, "pending due at +3m", due("pending", 3, 10), "p1", "p2", "p0")
		sameIDs(t, "pending due at +3m, max 2", due("pending", 3, 2), "p1", "p2")
		sameIDs(t, "expired due at +0", due("expired", 0, 10), "x1")
		sameIDs(t, "pending due at -1m", due("pending", -1, 10))
		// An update moves a record between the due lists, or out of them.
		cur, _ := l.Get(ctx, "p1")
		cur.Status = "expired"
		cur.Due = t0.Add(-time.Minute)
		if _, err := l.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		cur, _ = l.Get(ctx, "p2")
		cur.Due = time.Time{}
		if _, err := l.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "pending after the updates", due("pending", 10, 10), "p0", "p3")
		sameIDs(t, "expired after the updates", due("expired", 0, 10), "p1", "x1")
	})

	t.Run("by reference: every merchant's records of it, newest first", func(t *testing.T) {
		l := open(t)
		a := ledgerRecord("a", "ORDER-1", "paid", t0)
		b := ledgerRecord("b", "ORDER-1", "pending", t0.Add(2*time.Second))
		b.Merchant = "TEST-0000-0000-0002"
		c := ledgerRecord("c", "ORDER-1", "pending", t0.Add(time.Second))
		d := ledgerRecord("d", "ORDER-2", "pending", t0.Add(3*time.Second))
		mustInsert(t, l, a, b, c, d)
		recs, err := l.ByReference(ctx, "ORDER-1", 10)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "ORDER-1", recs, "b", "c", "a")
		if recs[0].Merchant != "TEST-0000-0000-0002" {
			t.Fatalf("merchant %q", recs[0].Merchant)
		}
		recs, _ = l.ByReference(ctx, "ORDER-1", 2)
		sameIDs(t, "ORDER-1, max 2", recs, "b", "c")
		recs, _ = l.ByReference(ctx, "ORDER-9", 2)
		sameIDs(t, "ORDER-9", recs)
	})

	t.Run("get many keeps the order asked and skips the missing", func(t *testing.T) {
		l := open(t)
		mustInsert(t, l, ledgerRecord("a", "R", "paid", t0), ledgerRecord("b", "R", "paid", t0))
		recs, err := l.GetMany(ctx, []string{"b", "zz", "a"})
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "get many", recs, "b", "a")
	})

	t.Run("list pages newest first, each record once, with filters", func(t *testing.T) {
		l := open(t)
		var all []string
		for i := 0; i < 23; i++ {
			status := []string{"pending", "paid", "declined", "expired"}[i%4]
			// Pairs share a creation time: ties sort by id.
			rec := ledgerRecord(fmt.Sprintf("tx-%02d", i), fmt.Sprintf("ORDER-%d", i%3), status, t0.Add(time.Duration(i/2)*time.Second))
			mustInsert(t, l, rec)
			all = append(all, rec.ID)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(all)))
		walk := func(q store.LedgerQuery) []string {
			t.Helper()
			var ids []string
			for pages := 0; ; pages++ {
				if pages > 30 {
					t.Fatal("listing does not end")
				}
				page, err := l.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Records) > q.Limit {
					t.Fatalf("page of %d records, limit %d", len(page.Records), q.Limit)
				}
				ids = append(ids, recordIDs(page.Records)...)
				if page.Next == "" {
					return ids
				}
				if len(page.Records) != q.Limit {
					t.Fatalf("a page of %d (limit %d) has a next page", len(page.Records), q.Limit)
				}
				q.Cursor = page.Next
			}
		}
		if got := walk(store.LedgerQuery{Limit: 5}); fmt.Sprint(got) != fmt.Sprint(all) {
			t.Fatalf("pages of 5: %v\nwant %v", got, all)
		}
		if got := walk(store.LedgerQuery{Limit: 23}); fmt.Sprint(got) != fmt.Sprint(all) {
			t.Fatalf("one page: %v", got)
		}
		filter := func(keep func(i int) bool) []string {
			var out []string
			for _, id := range all {
				var i int
				fmt.Sscanf(id, "tx-%d", &i)
				if keep(i) {
					out = append(out, id)
				}
			}
			return out
		}
		cases := []struct {
			name string
			q    store.LedgerQuery
			keep func(i int) bool
		}{
			{"status", store.LedgerQuery{Status: "paid", Limit: 2}, func(i int) bool { return i%4 == 1 }},
			{"reference", store.LedgerQuery{Reference: "ORDER-1", Limit: 3}, func(i int) bool { return i%3 == 1 }},
			{"status and reference", store.LedgerQuery{Status: "pending", Reference: "ORDER-0", Limit: 1}, func(i int) bool { return i%4 == 0 && i%3 == 0 }},
			{"since (inclusive)", store.LedgerQuery{Since: t0.Add(8 * time.Second), Limit: 4}, func(i int) bool { return i/2 >= 8 }},
			{"until (exclusive)", store.LedgerQuery{Until: t0.Add(3 * time.Second), Limit: 4}, func(i int) bool { return i/2 < 3 }},
			{"since and until and status", store.LedgerQuery{Since: t0.Add(2 * time.Second), Until: t0.Add(9 * time.Second), Status: "declined", Limit: 2},
				func(i int) bool { return i/2 >= 2 && i/2 < 9 && i%4 == 2 }},
			{"no match", store.LedgerQuery{Status: "refunded", Limit: 3}, func(int) bool { return false }},
		}
		for _, tc := range cases {
			if got, want := walk(tc.q), filter(tc.keep); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: %v\nwant %v", tc.name, got, want)
			}
		}
		if _, err := l.List(ctx, store.LedgerQuery{Limit: 2, Cursor: "not-a-cursor"}); !errors.Is(err, store.ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
		if _, err := l.List(ctx, store.LedgerQuery{}); err == nil {
			t.Fatal("a listing without a limit was accepted")
		}
	})

	t.Run("counts follow inserts, updates and purges", func(t *testing.T) {
		l := open(t)
		mustInsert(t, l, ledgerRecord("a", "R", "pending", t0), ledgerRecord("b", "R", "pending", t0.Add(time.Second)),
			ledgerRecord("c", "R", "paid", t0.Add(2*time.Second)))
		counts := func() string {
			t.Helper()
			c, err := l.Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(c)
		}
		if got := counts(); got != "map[paid:1 pending:2]" {
			t.Fatalf("counts %s", got)
		}
		cur, _ := l.Get(ctx, "a")
		cur.Status = "expired"
		if _, err := l.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if got := counts(); got != "map[expired:1 paid:1 pending:1]" {
			t.Fatalf("counts after an update %s", got)
		}
		if n, err := l.Purge(ctx, t0.Add(time.Second), 10); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if got := counts(); got != "map[paid:1 pending:1]" {
			t.Fatalf("counts after a purge %s", got)
		}
	})

	t.Run("purge deletes the oldest records and every trace of them", func(t *testing.T) {
		l := open(t)
		for i := 0; i < 6; i++ {
			rec := ledgerRecord(fmt.Sprintf("tx-%d", i), "ORDER-1", "pending", t0.Add(time.Duration(i)*time.Hour))
			rec.Due = t0
			mustInsert(t, l, rec)
		}
		if n, err := l.Purge(ctx, t0.Add(4*time.Hour), 3); err != nil || n != 3 {
			t.Fatalf("first purge: %d %v, want 3", n, err)
		}
		if n, err := l.Purge(ctx, t0.Add(4*time.Hour), 3); err != nil || n != 1 {
			t.Fatalf("second purge: %d %v, want 1 (tx-3; tx-4 is not before the bound)", n, err)
		}
		if n, err := l.Purge(ctx, t0.Add(4*time.Hour), 3); err != nil || n != 0 {
			t.Fatalf("third purge: %d %v, want 0", n, err)
		}
		for i := 0; i < 4; i++ {
			if _, err := l.Get(ctx, fmt.Sprintf("tx-%d", i)); !errors.Is(err, store.ErrRecordNotFound) {
				t.Fatalf("tx-%d after the purge: %v", i, err)
			}
		}
		page, _ := l.List(ctx, store.LedgerQuery{Limit: 10})
		sameIDs(t, "list after the purge", page.Records, "tx-5", "tx-4")
		byRef, _ := l.ByReference(ctx, "ORDER-1", 10)
		sameIDs(t, "by reference after the purge", byRef, "tx-5", "tx-4")
		due, _ := l.Due(ctx, "pending", t0, 10)
		sameIDs(t, "due after the purge", due, "tx-4", "tx-5")
	})

	t.Run("delete is a compare and swap and leaves no trace", func(t *testing.T) {
		l := open(t)
		a := ledgerRecord("a", "ORDER-1", "pending", t0)
		a.Due = t0
		mustInsert(t, l, a, ledgerRecord("b", "ORDER-1", "pending", t0.Add(time.Second)))
		if err := l.Delete(ctx, "a", 2); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("delete with a wrong version: %v, want ErrConflict", err)
		}
		if err := l.Delete(ctx, "nope", 1); !errors.Is(err, store.ErrRecordNotFound) {
			t.Fatalf("delete of a missing id: %v, want ErrRecordNotFound", err)
		}
		if err := l.Delete(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Get(ctx, "a"); !errors.Is(err, store.ErrRecordNotFound) {
			t.Fatalf("a after its delete: %v", err)
		}
		if err := l.Delete(ctx, "a", 1); !errors.Is(err, store.ErrRecordNotFound) {
			t.Fatalf("a second delete: %v, want ErrRecordNotFound", err)
		}
		page, _ := l.List(ctx, store.LedgerQuery{Limit: 10})
		sameIDs(t, "list after the delete", page.Records, "b")
		page, _ = l.List(ctx, store.LedgerQuery{Status: "pending", Limit: 10})
		sameIDs(t, "status listing after the delete", page.Records, "b")
		byRef, _ := l.ByReference(ctx, "ORDER-1", 10)
		sameIDs(t, "by reference after the delete", byRef, "b")
		due, _ := l.Due(ctx, "pending", t0, 10)
		sameIDs(t, "due after the delete", due)
		if c, _ := l.Counts(ctx); fmt.Sprint(c) != "map[pending:1]" {
			t.Fatalf("counts after the delete %v", c)
		}
		// The id is free again.
		mustInsert(t, l, ledgerRecord("a", "ORDER-2", "paid", t0))
	})

	if h.Reopen == nil {
		return
	}
	t.Run("records and their indexes survive a reopen", func(t *testing.T) {
		l := h.Open(t)
		a := ledgerRecord("a", "ORDER-1", "pending", t0)
		a.Due = t0.Add(time.Minute)
		mustInsert(t, l, a, ledgerRecord("b", "ORDER-1", "paid", t0.Add(time.Second)))
		cur, _ := l.Get(ctx, "b")
		cur.Data = []byte("changed")
		if _, err := l.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		mustInsert(t, l, ledgerRecord("c", "ORDER-1", "paid", t0.Add(2*time.Second)))
		if err := l.Delete(ctx, "c", 1); err != nil {
			t.Fatal(err)
		}
		l = h.Reopen(t, l)
		t.Cleanup(func() { _ = l.Close() })
		got, err := l.Get(ctx, "b")
		if err != nil || got.Version != 2 || string(got.Data) != "changed" {
			t.Fatalf("b after reopen: %+v %v", got, err)
		}
		due, _ := l.Due(ctx, "pending", t0.Add(time.Minute), 10)
		sameIDs(t, "due after reopen", due, "a")
		byRef, _ := l.ByReference(ctx, "ORDER-1", 10)
		sameIDs(t, "by reference after reopen", byRef, "b", "a")
		if c, _ := l.Counts(ctx); fmt.Sprint(c) != "map[paid:1 pending:1]" {
			t.Fatalf("counts after reopen %v", c)
		}
	})
}
