package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
	"github.com/qrphgate/qrphgate/internal/redistest"
	"github.com/qrphgate/qrphgate/internal/testenv"
	"github.com/qrphgate/qrphgate/store"
	"github.com/qrphgate/qrphgate/store/storetest"
)

// keyOf is a de-duplication key written out here independently of the
// code: "webhook:" and the hex SHA-256 of the fields, NUL-separated. The
// current key has four fields (merchant, action, reference, transaction
// id); the earlier forms had three (the header, or the payload's merchant,
// then action and reference).
func keyOf(fields ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return "webhook:" + hex.EncodeToString(sum[:])
}

// The key documented in docs/webhooks.md, from the decrypted payload only.
func TestDedupeKeyIsTheDocumentedDigest(t *testing.T) {
	p, err := ParsePayload([]byte(`{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-1","transactionId":"tx-1","activationCode":"A9X4-B7P2-Q6Z8-M3L5"}`),
		DefaultActionFields, DefaultReferenceFields)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.DedupeKey(), keyOf("A9X4-B7P2-Q6Z8-M3L5", "QRPH_SUCCESS", "ORDER-1", "tx-1"); got != want {
		t.Fatalf("key %s, want %s", got, want)
	}
	bare := Payload{Action: "QRPH_SUCCESS", Reference: "ORDER-1"}
	if got, want := bare.DedupeKey(), keyOf("", "QRPH_SUCCESS", "ORDER-1", ""); got != want {
		t.Fatalf("key without merchant or transaction id %s, want %s", got, want)
	}
	// Never an earlier form's key, so those are looked up separately.
	if bare.DedupeKey() == keyOf("", "QRPH_SUCCESS", "ORDER-1") {
		t.Fatal("the current key must differ from the earlier three-field form")
	}
}

// Two payments that reuse a reference (a second QR for the same order) are
// two events: the provider's transaction id is part of the key.
func TestInboundDedupeKeepsTransactionsApart(t *testing.T) {
	f := newInboundFixture(t, nil)
	send := func(tx string) string {
		body := envelope("data", seal(t, testWebhookKey, `{"action":"QRPH_SUCCESS","referenceNumber":"ORDER-1","transactionId":"`+tx+`"}`))
		return f.send(webhookRequest(body), allowedIP).body
	}
	for _, tc := range []struct{ tx, want string }{
		{"tx-1", receivedBody}, {"tx-2", receivedBody}, {"tx-1", receivedDuplicateBody},
	} {
		if got := send(tc.tx); got != tc.want {
			t.Fatalf("transaction %s: %s, want %s", tc.tx, got, tc.want)
		}
	}
	if n := f.pending(t); n != 2 {
		t.Fatalf("%d events spooled, want one per transaction", n)
	}
}

// countingDedupe counts the calls that reach the store (each one a round
// trip on Redis).
type countingDedupe struct {
	store.Dedupe
	adds, contains atomic.Int64
}

func (c *countingDedupe) Add(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	c.adds.Add(1)
	return c.Dedupe.Add(ctx, key, ttl)
}

func (c *countingDedupe) Contains(ctx context.Context, key string) (bool, error) {
	c.contains.Add(1)
	return c.Dedupe.Contains(ctx, key)
}

// The earlier releases' keys are looked up only for a copy that is new
// under the current key: the provider's retry and a replay cost the one
// Add they always did.
func TestInboundDuplicateCostsOneLookup(t *testing.T) {
	cd := &countingDedupe{Dedupe: store.NewMemory(nil)}
	f := newInboundFixture(t, func(c *Config) { c.Dedupe = cd })
	body := envelope("data", seal(t, testWebhookKey, payloadJSON("QRPH_SUCCESS", "ORDER-RT")))
	if a := f.send(webhookRequest(body), allowedIP); a.body != receivedBody {
		t.Fatalf("first: %s", a.body)
	}
	if cd.adds.Load() != 1 || cd.contains.Load() == 0 {
		t.Fatalf("new event: %d Adds, %d lookups; want 1 and the earlier forms'", cd.adds.Load(), cd.contains.Load())
	}
	cd.adds.Store(0)
	cd.contains.Store(0)
	for _, h := range []string{"", "TEST-0000-0000-0001", "EVIL-0000-0000-0001"} {
		r := webhookRequest(body)
		if h != "" {
			r.Header.Set("activation-code", h)
		}
		if a := f.send(r, allowedIP); a.body != receivedDuplicateBody {
			t.Fatalf("copy with header %q: %s", h, a.body)
		}
	}
	if cd.adds.Load() != 3 || cd.contains.Load() != 0 {
		t.Fatalf("3 duplicates: %d Adds, %d lookups; want 3 and 0", cd.adds.Load(), cd.contains.Load())
	}
}

// upgradeStore is a de-duplication store as the gateway wires it, opened
// once by the earlier release and again (after a restart) by this one.
type upgradeStore struct {
	name string
	// open returns the store's state; every call after the first sees
	// what the earlier calls wrote. close ends a call's hold (a restart).
	open func(t *testing.T) (sp store.Spool, dd store.Dedupe, close func())
}

// upgradeStores are the memory, file and Redis de-duplication stores; the
// Redis ones need the server on 127.0.0.1:6379.
func upgradeStores() []upgradeStore {
	return []upgradeStore{
		{"memory", func() func(*testing.T) (store.Spool, store.Dedupe, func()) {
			// A memory store does not survive a restart; a reload keeps it.
			sp, dd := storetest.NewMemorySpool(), store.NewMemory(nil)
			return func(*testing.T) (store.Spool, store.Dedupe, func()) { return sp, dd, func() {} }
		}()},
		{"file", func() func(*testing.T) (store.Spool, store.Dedupe, func()) {
			var path string
			return func(t *testing.T) (store.Spool, store.Dedupe, func()) {
				if path == "" {
					path = filepath.Join(t.TempDir(), "webhooks.spool")
				}
				sp := openBolt(t, path)
				return sp, sp, func() { _ = sp.Close() }
			}
		}()},
		{"redis spool", func() func(*testing.T) (store.Spool, store.Dedupe, func()) {
			prefix := testRedisPrefix()
			return func(t *testing.T) (store.Spool, store.Dedupe, func()) {
				sp, err := store.NewRedisSpool(context.Background(), openTestRedis(t, prefix), store.RedisSpoolOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return sp, sp, func() { _ = sp.Close() }
			}
		}()},
		{"file with store redis", func() func(*testing.T) (store.Spool, store.Dedupe, func()) {
			prefix := testRedisPrefix()
			var dir string
			return func(t *testing.T) (store.Spool, store.Dedupe, func()) {
				// Each "replica" has its own file: the earlier release's
				// marks reach this one through Redis only.
				if dir == "" {
					dir = t.TempDir()
				}
				sp := openBolt(t, filepath.Join(dir, fmt.Sprintf("replica-%d.spool", time.Now().UnixNano())))
				sd := store.NewSharedDedupe(sp, openTestRedis(t, prefix), nil)
				return sd, sd, func() { _ = sp.Close() }
			}
		}()},
	}
}

func openBolt(t *testing.T, path string) *store.BoltSpool {
	t.Helper()
	sp, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	return sp
}

var redisPrefixSeq atomic.Int64

func testRedisPrefix() string {
	return fmt.Sprintf("qrphgate-test:inbound:%d:%d:", time.Now().UnixNano(), redisPrefixSeq.Add(1))
}

// openTestRedis connects to the server on 127.0.0.1:6379 under prefix; the
// prefix's keys are dropped when the test ends.
func openTestRedis(t *testing.T, prefix string) *store.Redis {
	t.Helper()
	r, err := store.OpenRedis(context.Background(), "redis://127.0.0.1:6379/0", store.RedisOptions{Prefix: prefix})
	if err != nil {
		testenv.Missing(t, "redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		redistest.DropKeys(t, prefix)
	})
	return r
}

// An upgrade keeps what the earlier releases stored a duplicate, on every
// de-duplication store: their marks are keyed on the activation-code header
// (the oldest form) or on the payload's merchant without the transaction
// id (the previous form), and a webhook that is new under the current key
// is looked up under both, for the header it carries, no header, and every
// configured activation code. None of those events is delivered again,
// whatever header the copy carries; a new event still is, once.
func TestInboundUpgradeKeepsTheEarlierReleasesMarks(t *testing.T) {
	const (
		merchant = "A9X4-B7P2-Q6Z8-M3L5"
		code1    = "TEST-0000-0000-0001"
		code2    = "TEST-0000-0000-0002"
	)
	payload := func(ref string) string {
		return `{"action":"QRPH_SUCCESS","referenceNumber":"` + ref + `","transactionId":"tx-` + ref + `","activationCode":"` + merchant + `"}`
	}
	for _, st := range upgradeStores() {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			// The earlier releases accepted and delivered three events, as
			// they did: reserve the key, Put the event carrying it, Complete.
			sp, dd, closeOld := st.open(t)
			now := time.Now()
			for i, mark := range []string{
				keyOf(code1, "QRPH_SUCCESS", "ORDER-OLD-1"),    // header-keyed, with the header
				keyOf("", "QRPH_SUCCESS", "ORDER-OLD-2"),       // header-keyed, without one
				keyOf(merchant, "QRPH_SUCCESS", "ORDER-OLD-3"), // merchant-keyed (no transaction id)
			} {
				if added, err := dd.Add(ctx, mark, DefaultDedupeWindow); err != nil || !added {
					t.Fatalf("earlier release's Add: %v %v", added, err)
				}
				ev := store.SpoolEvent{ID: NewEventID(now), Action: "QRPH_SUCCESS", Reference: fmt.Sprintf("ORDER-OLD-%d", i+1),
					Body: []byte("{}"), Received: now, RetryFrom: now, NextAttempt: now, DedupeKey: mark, DedupeUntil: now.Add(DefaultDedupeWindow)}
				if err := sp.Put(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if err := sp.Complete(ctx, ev.ID); err != nil {
					t.Fatal(err)
				}
			}
			closeOld()

			sp, dd, _ = st.open(t)
			f := newInboundFixture(t, func(c *Config) {
				c.Spool, c.Dedupe, c.Clock = sp, dd, clock.Real()
				c.ActivationCodes = []string{code1, code2}
			})
			for _, tc := range []struct{ ref, header, want string }{
				{"ORDER-OLD-1", code1, receivedDuplicateBody}, // the provider's retry
				{"ORDER-OLD-1", code2, receivedDuplicateBody}, // replayed under another configured code
				{"ORDER-OLD-1", code2, receivedDuplicateBody}, // again: the reservation was dropped, not left pending
				{"ORDER-OLD-2", code1, receivedDuplicateBody}, // first came without a header
				{"ORDER-OLD-3", code2, receivedDuplicateBody}, // keyed on the payload's merchant
				{"ORDER-NEW-1", code2, receivedBody},
				{"ORDER-NEW-1", code1, receivedDuplicateBody},
			} {
				r := webhookRequest(envelope("data", seal(t, testWebhookKey, payload(tc.ref))))
				r.Header.Set("activation-code", tc.header)
				if a := f.send(r, allowedIP); a.status != 200 || a.body != tc.want {
					t.Fatalf("%s with %s: %d %s, want %s", tc.ref, tc.header, a.status, a.body, tc.want)
				}
			}
			if s, err := sp.Stats(ctx); err != nil || s.Pending != 1 {
				t.Fatalf("%d events pending (%v), want only the new one", s.Pending, err)
			}
		})
	}
}
