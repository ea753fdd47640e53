package outbound

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
	"github.com/qrphgate/qrphgate/store"
)

// laterStore is a store.ClaimTaker whose answers are written when the test
// says (store.LaterCompleter), or fail to be.
type laterStore struct {
	store.ClaimTaker
	mu      sync.Mutex
	pending []func(fail bool)
}

func (l *laterStore) CompleteLater(key, fp string, value []byte, ttl time.Duration, done func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, func(fail bool) {
		if fail {
			done(errors.New("store down"))
			return
		}
		done(l.Complete(context.Background(), key, fp, value, ttl))
	})
}

// write lets the queued answers be written (or fail).
func (l *laterStore) write(fail bool) int {
	l.mu.Lock()
	p := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, f := range p {
		f(fail)
	}
	return len(p)
}

func newLaterHarness(t *testing.T) (*harness, *laterStore) {
	var ls *laterStore
	h := newHarness(t, hopts{idem: func(s store.Idempotency) store.Idempotency {
		ls = &laterStore{ClaimTaker: s.(*store.Memory).WithBudget(BudgetKey(policy.Sandbox, AccountID(testSecretKey)))}
		return ls
	}})
	return h, ls
}

// The answer is the app's before the store has it: a duplicate in this
// process meanwhile gets it from memory (no second call, no wait), and the
// flight is let go once the answer is written.
func TestAnswerWrittenLater(t *testing.T) {
	h, ls := newLaterHarness(t)
	first := h.do("POST", "/v1/pay/qr", createBody("LATER-1"))
	if first.Code != 200 {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	if c, _ := ls.Get(context.Background(), h.out.idemKeyOf(t, "LATER-1")); c.State != store.InFlight {
		t.Fatalf("the store has %v before the write; want the claim in flight", c.State)
	}
	dup := h.do("POST", "/v1/pay/qr", createBody("LATER-1"))
	if dup.Code != 200 || dup.Header().Get(proxy.HeaderIdempotentReplayed) != "true" || idOf(t, dup.Body.Bytes()) != idOf(t, first.Body.Bytes()) {
		t.Fatalf("duplicate before the write: %d %v", dup.Code, dup.Header())
	}
	if h.out.idem.inFlight() != 1 {
		t.Fatalf("in flight %d before the write, want 1", h.out.idem.inFlight())
	}
	if n := ls.write(false); n != 1 {
		t.Fatalf("%d answers queued, want 1", n)
	}
	if h.out.idem.inFlight() != 0 {
		t.Fatalf("in flight %d after the write, want 0", h.out.idem.inFlight())
	}
	again := h.do("POST", "/v1/pay/qr", createBody("LATER-1"))
	if again.Code != 200 || again.Header().Get(proxy.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay from the store: %d %v", again.Code, again.Header())
	}
	if n := len(h.fake.Calls()); n != 1 {
		t.Fatalf("%d provider calls, want 1", n)
	}
}

// A write that fails loses only the replay, as a failed Complete does: the
// claim is released (not left blocking the reference until its lease ends)
// and the flight let go.
func TestAnswerWrittenLaterFails(t *testing.T) {
	h, ls := newLaterHarness(t)
	if rec := h.do("POST", "/v1/pay/qr", createBody("LATER-2")); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	ls.write(true)
	key := h.out.idemKeyOf(t, "LATER-2")
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := ls.Get(context.Background(), key); c.State != 0 || h.out.idem.inFlight() != 0; c, _ = ls.Get(context.Background(), key) {
		if time.Now().After(deadline) {
			t.Fatalf("after a failed write: the key is %v, %d in flight; want released and let go", c.State, h.out.idem.inFlight())
		}
		time.Sleep(time.Millisecond) // the release runs on its own goroutine: poll
	}
}

// idemKeyOf is the idempotency key of a default-merchant 500.00 PHP call
// for ref (createBody's).
func (o *Handler) idemKeyOf(t *testing.T, ref string) string {
	t.Helper()
	key, _, _ := o.idemKey(policy.CreateQR{ActivationCode: testActivationCode, Currency: "PHP", Amount: "500.00", MerchantReferenceNumber: ref})
	return key
}
