package store

import (
	"container/heap"
	"time"
)

// pendingIndex is the file spool's in-memory view of its pending events: a
// min-heap on the time each becomes claimable, so Claim and NextDue need no
// disk scan. The bbolt file is locked by one process, so this view is
// authoritative; leases live only here (after a crash every in-flight event
// is simply due again, which at-least-once delivery allows).
type pendingIndex struct {
	items map[string]*pendingItem
	heap  *itemHeap // by due time
	// byReceived orders the same items by receipt, so the oldest pending
	// event (for the status page and metrics) costs nothing to find even
	// with a large backlog.
	byReceived *itemHeap
}

type pendingItem struct {
	id       string
	due      time.Time
	received time.Time
	pos      int // in heap
	rpos     int // in byReceived
}

func newPendingIndex() *pendingIndex {
	return &pendingIndex{
		items: make(map[string]*pendingItem),
		heap: &itemHeap{
			key: func(it *pendingItem) time.Time { return it.due },
			pos: func(it *pendingItem) *int { return &it.pos },
		},
		byReceived: &itemHeap{
			key: func(it *pendingItem) time.Time { return it.received },
			pos: func(it *pendingItem) *int { return &it.rpos },
		},
	}
}

func (x *pendingIndex) add(id string, due, received time.Time) {
	if it, ok := x.items[id]; ok {
		it.due = due
		heap.Fix(x.heap, it.pos)
		return
	}
	it := &pendingItem{id: id, due: due, received: received}
	x.items[id] = it
	heap.Push(x.heap, it)
	heap.Push(x.byReceived, it)
}

func (x *pendingIndex) setDue(id string, due time.Time) {
	if it, ok := x.items[id]; ok {
		it.due = due
		heap.Fix(x.heap, it.pos)
	}
}

func (x *pendingIndex) remove(id string) {
	if it, ok := x.items[id]; ok {
		heap.Remove(x.heap, it.pos)
		heap.Remove(x.byReceived, it.rpos)
		delete(x.items, id)
	}
}

// claim leases up to max items due at now and returns their ids.
func (x *pendingIndex) claim(now time.Time, lease time.Duration, max int) []string {
	var ids []string
	for len(ids) < max && x.heap.Len() > 0 && !x.heap.items[0].due.After(now) {
		it := x.heap.items[0]
		it.due = now.Add(lease)
		heap.Fix(x.heap, 0)
		ids = append(ids, it.id)
	}
	return ids
}

func (x *pendingIndex) next() (time.Time, bool) {
	if x.heap.Len() == 0 {
		return time.Time{}, false
	}
	return x.heap.items[0].due, true
}

func (x *pendingIndex) oldest() time.Time {
	if x.byReceived.Len() == 0 {
		return time.Time{}
	}
	return x.byReceived.items[0].received
}

// itemHeap is a min-heap of pending items on one of their times, keeping
// each item's position in the matching slot so heap.Fix and heap.Remove
// can find it. The ids break ties so the order is total.
type itemHeap struct {
	items []*pendingItem
	key   func(*pendingItem) time.Time
	pos   func(*pendingItem) *int
}

func (h *itemHeap) Len() int { return len(h.items) }
func (h *itemHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if ka, kb := h.key(a), h.key(b); !ka.Equal(kb) {
		return ka.Before(kb)
	}
	return a.id < b.id
}
func (h *itemHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.pos(h.items[i]), *h.pos(h.items[j]) = i, j
}
func (h *itemHeap) Push(v any) {
	it := v.(*pendingItem)
	*h.pos(it) = len(h.items)
	h.items = append(h.items, it)
}
func (h *itemHeap) Pop() any {
	last := len(h.items) - 1
	it := h.items[last]
	h.items[last] = nil
	h.items = h.items[:last]
	return it
}
