package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// SpoolHarness opens the spool back end under test.
type SpoolHarness struct {
	// Open returns an empty spool; it is called once per subtest, and the
	// spool is closed when the subtest ends.
	Open func(t *testing.T) store.Spool
	// Reopen closes s and opens the same storage again, as a restart would;
	// nil for back ends that keep nothing (the persistence test is then
	// not part of the suite).
	Reopen func(t *testing.T, s store.Spool) store.Spool
}

// t0 is the suite's fixed "now"; the spool takes times as arguments.
var t0 = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)

func sampleEvent(id string) store.SpoolEvent {
	return store.SpoolEvent{
		ID:             id,
		Action:         "QRPH_SUCCESS",
		Reference:      "ORDER-" + id,
		ActivationCode: "TEST-0000-0000-0001",
		Body:           []byte(`{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-` + id + `","amount":9800}`),
		Received:       t0.Add(-time.Minute),
		RetryFrom:      t0.Add(-time.Minute),
		NextAttempt:    t0,
		Source:         "src-" + id,
		Reconciliation: "amount_mismatch,late_result",
	}
}

func sameEvent(t *testing.T, got, want store.SpoolEvent) {
	t.Helper()
	type flat struct {
		ID, Action, Reference, ActivationCode, LastError string
		Body                                             string
		Attempts                                         int
		Source, Reconciliation                           string
	}
	g := flat{got.ID, got.Action, got.Reference, got.ActivationCode, got.LastError, string(got.Body), got.Attempts, got.Source, got.Reconciliation}
	w := flat{want.ID, want.Action, want.Reference, want.ActivationCode, want.LastError, string(want.Body), want.Attempts, want.Source, want.Reconciliation}
	if g != w {
		t.Fatalf("event differs:\n got %+v\nwant %+v", g, w)
	}
	for _, p := range []struct {
		name      string
		got, want time.Time
	}{
		{"Received", got.Received, want.Received},
		{"RetryFrom", got.RetryFrom, want.RetryFrom},
		{"NextAttempt", got.NextAttempt, want.NextAttempt},
		{"DeadAt", got.DeadAt, want.DeadAt},
	} {
		if !p.got.Equal(p.want) {
			t.Fatalf("%s of %s = %v, want %v", p.name, want.ID, p.got, p.want)
		}
	}
}

func mustPut(t *testing.T, s store.Spool, evs ...store.SpoolEvent) {
	t.Helper()
	for _, ev := range evs {
		if err := s.Put(context.Background(), ev); err != nil {
			t.Fatalf("put %s: %v", ev.ID, err)
		}
	}
}

func claimIDs(t *testing.T, s store.Spool, now time.Time, lease time.Duration, max int) []string {
	t.Helper()
	evs, err := s.Claim(context.Background(), now, lease, max)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func stats(t *testing.T, s store.Spool) store.SpoolStats {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Spool runs the spool conformance tests.
func Spool(t *testing.T, h SpoolHarness) {
	ctx := context.Background()
	open := func(t *testing.T) store.Spool {
		s := h.Open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	const lease = 30 * time.Second

	t.Run("put then claim returns the event intact", func(t *testing.T) {
		s := open(t)
		ev := sampleEvent("a1")
		ev.Body = append([]byte{0, 0xff, '\n'}, ev.Body...) // bytes, not text
		mustPut(t, s, ev)
		evs, err := s.Claim(ctx, t0, lease, 10)
		if err != nil || len(evs) != 1 {
			t.Fatalf("claim: %d events, %v", len(evs), err)
		}
		sameEvent(t, evs[0], ev)
		evs[0].Body[0] = 'x' // the caller's copy is its own
		_ = s.Retry(ctx, ev.ID, 0, t0, "")
		again, _ := s.Claim(ctx, t0, lease, 10)
		if len(again) != 1 || !bytes.Equal(again[0].Body, ev.Body) {
			t.Fatal("changing a claimed event's body changed the stored one")
		}
	})

	t.Run("an event is not claimed before it is due", func(t *testing.T) {
		s := open(t)
		ev := sampleEvent("b1")
		ev.NextAttempt = t0.Add(time.Minute)
		mustPut(t, s, ev)
		if ids := claimIDs(t, s, t0, lease, 10); len(ids) != 0 {
			t.Fatalf("claimed %v before it was due", ids)
		}
		if due, ok, err := s.NextDue(ctx); err != nil || !ok || !due.Equal(ev.NextAttempt) {
			t.Fatalf("NextDue = %v %v %v, want %v", due, ok, err, ev.NextAttempt)
		}
		if ids := claimIDs(t, s, ev.NextAttempt, lease, 10); len(ids) != 1 {
			t.Fatalf("claim when due: %v", ids)
		}
	})

	t.Run("a lease hides a claimed event until it ends", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, sampleEvent("c1"))
		if ids := claimIDs(t, s, t0, lease, 10); len(ids) != 1 {
			t.Fatalf("first claim: %v", ids)
		}
		if ids := claimIDs(t, s, t0.Add(lease/2), lease, 10); len(ids) != 0 {
			t.Fatalf("claimed again during the lease: %v", ids)
		}
		if due, ok, _ := s.NextDue(ctx); !ok || !due.Equal(t0.Add(lease)) {
			t.Fatalf("NextDue during the lease = %v %v, want the lease's end %v", due, ok, t0.Add(lease))
		}
		if ids := claimIDs(t, s, t0.Add(lease), lease, 10); len(ids) != 1 {
			t.Fatalf("an expired lease must make the event claimable again: %v", ids)
		}
	})

	t.Run("claim takes the earliest due first, at most max", func(t *testing.T) {
		s := open(t)
		for i, off := range []time.Duration{3, 1, 4, 0, 2} {
			ev := sampleEvent(fmt.Sprintf("d%d", i))
			ev.NextAttempt = t0.Add(off * time.Second)
			mustPut(t, s, ev)
		}
		now := t0.Add(10 * time.Second)
		got := claimIDs(t, s, now, lease, 2)
		if fmt.Sprint(got) != "[d3 d1]" {
			t.Fatalf("claim(max 2) = %v, want [d3 d1]", got)
		}
		got = claimIDs(t, s, now, lease, 10)
		if fmt.Sprint(got) != "[d4 d0 d2]" {
			t.Fatalf("second claim = %v, want [d4 d0 d2]", got)
		}
	})

	t.Run("complete removes the event", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, sampleEvent("e1"), sampleEvent("e2"))
		claimIDs(t, s, t0, lease, 10)
		if err := s.Complete(ctx, "e1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, "e1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second complete: %v, want ErrNotFound", err)
		}
		if st := stats(t, s); st.Pending != 1 {
			t.Fatalf("pending %d after one complete, want 1", st.Pending)
		}
		if ids := claimIDs(t, s, t0.Add(time.Hour), lease, 10); fmt.Sprint(ids) != "[e2]" {
			t.Fatalf("after complete: %v", ids)
		}
	})

	t.Run("retry reschedules and records the attempt", func(t *testing.T) {
		s := open(t)
		ev := sampleEvent("f1")
		mustPut(t, s, ev)
		claimIDs(t, s, t0, lease, 10)
		next := t0.Add(5 * time.Minute)
		if err := s.Retry(ctx, "f1", 3, next, "HTTP 503"); err != nil {
			t.Fatal(err)
		}
		if ids := claimIDs(t, s, t0.Add(4*time.Minute), lease, 10); len(ids) != 0 {
			t.Fatalf("claimed before the retry time: %v", ids)
		}
		evs, _ := s.Claim(ctx, next, lease, 10)
		if len(evs) != 1 {
			t.Fatalf("claim at the retry time: %d events", len(evs))
		}
		ev.Attempts, ev.NextAttempt, ev.LastError = 3, next, "HTTP 503"
		sameEvent(t, evs[0], ev)
	})

	t.Run("bury, list and replay a dead letter", func(t *testing.T) {
		s := open(t)
		ev := sampleEvent("g1")
		mustPut(t, s, ev, sampleEvent("g2"))
		claimIDs(t, s, t0, lease, 10)
		deadAt := t0.Add(72 * time.Hour)
		if err := s.Bury(ctx, "g1", 40, deadAt, "HTTP 500"); err != nil {
			t.Fatal(err)
		}
		if st := stats(t, s); st.Pending != 1 || st.DeadLetters != 1 {
			t.Fatalf("stats after bury: %+v", st)
		}
		dl, err := s.DeadLetters(ctx, 10)
		if err != nil || len(dl) != 1 {
			t.Fatalf("dead letters: %d %v", len(dl), err)
		}
		ev.Attempts, ev.DeadAt, ev.LastError = 40, deadAt, "HTTP 500"
		sameEvent(t, dl[0], ev)
		if ids := claimIDs(t, s, deadAt.Add(time.Hour), lease, 10); fmt.Sprint(ids) != "[g2]" {
			t.Fatalf("a dead letter was claimed: %v", ids)
		}
		if _, err := s.Replay(ctx, "g2", deadAt); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("replay of a pending event: %v, want ErrNotFound", err)
		}
		replayAt := deadAt.Add(time.Hour)
		got, err := s.Replay(ctx, "g1", replayAt)
		if err != nil {
			t.Fatal(err)
		}
		ev.DeadAt, ev.RetryFrom, ev.NextAttempt = time.Time{}, replayAt, replayAt
		sameEvent(t, got, ev)
		if _, err := s.Replay(ctx, "g1", replayAt); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second replay: %v, want ErrNotFound", err)
		}
		if st := stats(t, s); st.Pending != 2 || st.DeadLetters != 0 {
			t.Fatalf("stats after replay: %+v", st)
		}
		evs, _ := s.Claim(ctx, replayAt, lease, 10)
		found := false
		for _, e := range evs {
			if e.ID == "g1" {
				found = true
				sameEvent(t, e, ev)
			}
		}
		if !found {
			t.Fatal("a replayed event was not claimable at once")
		}
	})

	t.Run("dead letters are listed in id order, at most max", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"h3", "h1", "h2"} {
			mustPut(t, s, sampleEvent(id))
		}
		claimIDs(t, s, t0, lease, 10)
		for _, id := range []string{"h2", "h3", "h1"} {
			if err := s.Bury(ctx, id, 1, t0, "x"); err != nil {
				t.Fatal(err)
			}
		}
		dl, _ := s.DeadLetters(ctx, 2)
		if len(dl) != 2 || dl[0].ID != "h1" || dl[1].ID != "h2" {
			t.Fatalf("dead letters(2): %v", dl)
		}
	})

	t.Run("ids are unique and unknown ids are reported", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, sampleEvent("i1"))
		if err := s.Put(ctx, sampleEvent("i1")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second put: %v, want ErrExists", err)
		}
		claimIDs(t, s, t0, lease, 1)
		_ = s.Bury(ctx, "i1", 1, t0, "x")
		if err := s.Put(ctx, sampleEvent("i1")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("put over a dead letter: %v, want ErrExists", err)
		}
		for name, err := range map[string]error{
			"complete": s.Complete(ctx, "nope"),
			"retry":    s.Retry(ctx, "nope", 1, t0, ""),
			"bury":     s.Bury(ctx, "nope", 1, t0, ""),
		} {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s of an unknown id: %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("stats report the oldest pending event", func(t *testing.T) {
		s := open(t)
		if st := stats(t, s); st.Pending != 0 || !st.OldestPending.IsZero() {
			t.Fatalf("empty spool: %+v", st)
		}
		old, young := sampleEvent("j1"), sampleEvent("j2")
		old.Received, young.Received = t0.Add(-5*time.Minute), t0.Add(-time.Minute)
		mustPut(t, s, young, old)
		if st := stats(t, s); st.Pending != 2 || !st.OldestPending.Equal(old.Received) {
			t.Fatalf("stats %+v, want oldest %v", st, old.Received)
		}
	})

	t.Run("concurrent puts and claims hand out each event once", func(t *testing.T) {
		s := open(t)
		const writers, each = 16, 25
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := s.Put(ctx, sampleEvent(fmt.Sprintf("k%02d-%02d", w, i))); err != nil {
						t.Errorf("put: %v", err)
					}
				}
			}()
		}
		var mu sync.Mutex
		seen := map[string]int{}
		stop := make(chan struct{})
		var claimers sync.WaitGroup
		for c := 0; c < 4; c++ {
			claimers.Add(1)
			go func() {
				defer claimers.Done()
				for {
					evs, err := s.Claim(ctx, t0, time.Hour, 7)
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					for _, ev := range evs {
						mu.Lock()
						seen[ev.ID]++
						mu.Unlock()
						if err := s.Complete(ctx, ev.ID); err != nil {
							t.Errorf("complete %s: %v", ev.ID, err)
						}
					}
					if len(evs) == 0 {
						select {
						case <-stop:
							return
						default:
							time.Sleep(time.Millisecond)
						}
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		claimers.Wait()
		// A last claim picks up anything put after the claimers' final look.
		for _, id := range claimIDs(t, s, t0, time.Hour, writers*each) {
			seen[id]++
		}
		if len(seen) != writers*each {
			t.Fatalf("%d distinct events claimed, want %d", len(seen), writers*each)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%s claimed %d times", id, n)
			}
		}
	})

	t.Run("archive keeps a delivered event in the history", func(t *testing.T) {
		s := open(t)
		ev := sampleEvent("q1")
		mustPut(t, s, ev, sampleEvent("q2"))
		claimIDs(t, s, t0, lease, 10)
		at := t0.Add(time.Second)
		if err := s.Archive(ctx, "q1", at); err != nil {
			t.Fatal(err)
		}
		if err := s.Archive(ctx, "q1", at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second archive: %v, want ErrNotFound", err)
		}
		if err := s.Complete(ctx, "q1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("complete of an archived event: %v, want ErrNotFound", err)
		}
		if st := stats(t, s); st.Pending != 1 || st.Delivered != 1 || st.DeadLetters != 0 {
			t.Fatalf("stats after archive: %+v", st)
		}
		if ids := claimIDs(t, s, t0.Add(time.Hour), lease, 10); fmt.Sprint(ids) != "[q2]" {
			t.Fatalf("an archived event was claimed: %v", ids)
		}
		if err := s.Put(ctx, sampleEvent("q1")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("put over an archived event: %v, want ErrExists", err)
		}
		page, err := s.Events(ctx, store.EventQuery{Status: store.StatusDelivered, Limit: 10})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("delivered events: %v %v", page.Events, err)
		}
		got := page.Events[0]
		if got.ID != "q1" || !got.DeliveredAt.Equal(at) || got.Reference != ev.Reference || len(got.Body) != 0 {
			t.Fatalf("listed %+v (a listing carries metadata, never the body)", got)
		}
		// Replayed with its original id, due at once.
		replayAt := t0.Add(time.Hour)
		re, err := s.Replay(ctx, "q1", replayAt)
		if err != nil {
			t.Fatal(err)
		}
		ev.RetryFrom, ev.NextAttempt = replayAt, replayAt
		sameEvent(t, re, ev)
		if !re.DeliveredAt.IsZero() {
			t.Fatalf("a replayed event still says delivered at %v", re.DeliveredAt)
		}
		evs, _ := s.Claim(ctx, replayAt, lease, 10)
		if len(evs) != 1 || evs[0].ID != "q1" {
			t.Fatalf("claim after replay: %v", evs)
		}
		sameEvent(t, evs[0], ev)
		if st := stats(t, s); st.Delivered != 0 || st.Pending != 2 {
			t.Fatalf("stats after replay: %+v", st)
		}
	})

	t.Run("events are listed by status, reference and time, newest first, in pages", func(t *testing.T) {
		s := open(t)
		for i := 0; i < 7; i++ {
			ev := sampleEvent(fmt.Sprintf("r%d", i))
			ev.Received = t0.Add(time.Duration(i) * time.Minute)
			if i%2 == 1 {
				ev.Reference = "ORDER-ODD"
			}
			mustPut(t, s, ev)
		}
		claimIDs(t, s, t0.Add(time.Hour), lease, 10)
		for _, id := range []string{"r0", "r1", "r2"} {
			if err := s.Archive(ctx, id, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Bury(ctx, "r3", 5, t0.Add(time.Hour), "HTTP 500"); err != nil {
			t.Fatal(err)
		}
		list := func(q store.EventQuery) ([]string, string) {
			t.Helper()
			page, err := s.Events(ctx, q)
			if err != nil {
				t.Fatalf("events %+v: %v", q, err)
			}
			ids := make([]string, len(page.Events))
			for i, ev := range page.Events {
				ids[i] = ev.ID + ":" + ev.Status()
				if len(ev.Body) != 0 {
					t.Fatalf("a listing carried the body of %s", ev.ID)
				}
			}
			return ids, page.Next
		}
		for _, c := range []struct {
			q    store.EventQuery
			want string
		}{
			{store.EventQuery{Limit: 10}, "[r6:pending r5:pending r4:pending r3:dead r2:delivered r1:delivered r0:delivered]"},
			{store.EventQuery{Limit: 10, Status: store.StatusDelivered}, "[r2:delivered r1:delivered r0:delivered]"},
			{store.EventQuery{Limit: 10, Status: store.StatusDead}, "[r3:dead]"},
			{store.EventQuery{Limit: 10, Status: store.StatusPending}, "[r6:pending r5:pending r4:pending]"},
			{store.EventQuery{Limit: 10, Reference: "ORDER-ODD"}, "[r5:pending r3:dead r1:delivered]"},
			{store.EventQuery{Limit: 10, Reference: "ORDER-NONE"}, "[]"},
			{store.EventQuery{Limit: 10, Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)}, "[r4:pending r3:dead r2:delivered]"},
			{store.EventQuery{Limit: 10, Cursor: "r3"}, "[r2:delivered r1:delivered r0:delivered]"},
		} {
			if got, _ := list(c.q); fmt.Sprint(got) != c.want {
				t.Errorf("events %+v = %v, want %s", c.q, got, c.want)
			}
		}
		var all []string
		q := store.EventQuery{Limit: 3}
		for pages := 0; ; pages++ {
			ids, next := list(q)
			all = append(all, ids...)
			if next == "" {
				break
			}
			if pages > 5 {
				t.Fatal("the pages never end")
			}
			q.Cursor = next
		}
		if len(all) != 7 || all[0] != "r6:pending" || all[6] != "r0:delivered" {
			t.Fatalf("paged listing %v", all)
		}
		if _, err := s.Events(ctx, store.EventQuery{Limit: 1, Status: "bogus"}); err == nil {
			t.Fatal("an unknown status was accepted")
		}
	})

	t.Run("purge drops what retention no longer keeps", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"s1", "s2", "s3", "s4", "s5"} {
			mustPut(t, s, sampleEvent(id))
		}
		claimIDs(t, s, t0, lease, 10)
		_ = s.Archive(ctx, "s1", t0.Add(1*time.Hour))
		_ = s.Archive(ctx, "s2", t0.Add(3*time.Hour))
		_ = s.Bury(ctx, "s3", 1, t0.Add(1*time.Hour), "x")
		_ = s.Bury(ctx, "s4", 1, t0.Add(3*time.Hour), "x")
		if n, err := s.Purge(ctx, t0.Add(2*time.Hour), time.Time{}, 100); err != nil || n != 1 {
			t.Fatalf("purge of delivered events: %d %v, want 1", n, err)
		}
		if n, err := s.Purge(ctx, time.Time{}, t0.Add(2*time.Hour), 100); err != nil || n != 1 {
			t.Fatalf("purge of dead letters: %d %v, want 1", n, err)
		}
		if n, err := s.Purge(ctx, t0.Add(2*time.Hour), t0.Add(2*time.Hour), 100); err != nil || n != 0 {
			t.Fatalf("purge again: %d %v, want 0", n, err)
		}
		page, _ := s.Events(ctx, store.EventQuery{Limit: 10})
		var ids []string
		for _, ev := range page.Events {
			ids = append(ids, ev.ID)
		}
		if fmt.Sprint(ids) != "[s5 s4 s2]" {
			t.Fatalf("after purge: %v, want [s5 s4 s2]", ids)
		}
		if st := stats(t, s); st.Pending != 1 || st.Delivered != 1 || st.DeadLetters != 1 {
			t.Fatalf("stats after purge: %+v", st)
		}
		// Never a pending event, and at most max at a time.
		if n, _ := s.Purge(ctx, t0.Add(100*time.Hour), t0.Add(100*time.Hour), 1); n != 1 {
			t.Fatalf("purge(max 1) = %d", n)
		}
		if st := stats(t, s); st.Pending != 1 {
			t.Fatalf("a pending event was purged: %+v", st)
		}
	})

	if h.Reopen == nil {
		return
	}
	t.Run("everything survives a reopen; leases do not", func(t *testing.T) {
		s := h.Open(t)
		a, b, c, d := sampleEvent("p1"), sampleEvent("p2"), sampleEvent("p3"), sampleEvent("p4")
		mustPut(t, s, a, b, c, d)
		claimIDs(t, s, t0, time.Hour, 10) // all four leased for an hour
		next := t0.Add(2 * time.Minute)
		if err := s.Retry(ctx, "p2", 2, next, "timeout"); err != nil {
			t.Fatal(err)
		}
		if err := s.Bury(ctx, "p3", 9, t0, "HTTP 500"); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, "p4"); err != nil {
			t.Fatal(err)
		}
		s = h.Reopen(t, s)
		t.Cleanup(func() { _ = s.Close() })
		if st := stats(t, s); st.Pending != 2 || st.DeadLetters != 1 {
			t.Fatalf("stats after reopen: %+v", st)
		}
		// p1's lease died with the process: it is due at once.
		evs, _ := s.Claim(ctx, t0, time.Hour, 10)
		if len(evs) != 1 || evs[0].ID != "p1" {
			t.Fatalf("claim after reopen: %v", evs)
		}
		sameEvent(t, evs[0], a)
		evs, _ = s.Claim(ctx, next, lease, 10)
		b.Attempts, b.NextAttempt, b.LastError = 2, next, "timeout"
		if len(evs) != 1 {
			t.Fatalf("claim of the retried event after reopen: %v", evs)
		}
		sameEvent(t, evs[0], b)
		dl, _ := s.DeadLetters(ctx, 10)
		c.Attempts, c.DeadAt, c.LastError = 9, t0, "HTTP 500"
		if len(dl) != 1 {
			t.Fatalf("dead letters after reopen: %v", dl)
		}
		sameEvent(t, dl[0], c)
	})
}
