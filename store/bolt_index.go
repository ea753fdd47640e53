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
	heap  pendingHeap
	// byReceived orders the same items by receipt, so the oldest pending
	// event (for the status page and metrics) costs nothing to find even
	// with a large backlog.
	byReceived receivedHeap
}

type pendingItem struct {
	id       string
	due      time.Time
	received time.Time
	pos      int // in heap
	rpos     int // in byReceived
}

func newPendingIndex() *pendingIndex {
	return &pendingIndex{items: make(map[string]*pendingItem)}
}

func (x *pendingIndex) add(id string, due, received time.Time) {
	if it, ok := x.items[id]; ok {
		it.due = due
		heap.Fix(&x.heap, it.pos)
		return
	}
	it := &pendingItem{id: id, due: due, received: received}
	x.items[id] = it
	heap.Push(&x.heap, it)
	heap.Push(&x.byReceived, it)
}

func (x *pendingIndex) setDue(id string, due time.Time) {
	if it, ok := x.items[id]; ok {
		it.due = due
		heap.Fix(&x.heap, it.pos)
	}
}

func (x *pendingIndex) remove(id string) {
	if it, ok := x.items[id]; ok {
		heap.Remove(&x.heap, it.pos)
		heap.Remove(&x.byReceived, it.rpos)
		delete(x.items, id)
	}
}

// claim leases up to max items due at now and returns their ids.
func (x *pendingIndex) claim(now time.Time, lease time.Duration, max int) []string {
	var ids []string
	for len(ids) < max && len(x.heap) > 0 && !x.heap[0].due.After(now) {
		it := x.heap[0]
		it.due = now.Add(lease)
		heap.Fix(&x.heap, 0)
		ids = append(ids, it.id)
	}
	return ids
}

func (x *pendingIndex) next() (time.Time, bool) {
	if len(x.heap) == 0 {
		return time.Time{}, false
	}
	return x.heap[0].due, true
}

func (x *pendingIndex) oldest() time.Time {
	if len(x.byReceived) == 0 {
		return time.Time{}
	}
	return x.byReceived[0].received
}

type pendingHeap []*pendingItem

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].id < h[j].id
}
func (h pendingHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *pendingHeap) Push(v any) {
	it := v.(*pendingItem)
	it.pos = len(*h)
	*h = append(*h, it)
}
func (h *pendingHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

type receivedHeap []*pendingItem

func (h receivedHeap) Len() int { return len(h) }
func (h receivedHeap) Less(i, j int) bool {
	if !h[i].received.Equal(h[j].received) {
		return h[i].received.Before(h[j].received)
	}
	return h[i].id < h[j].id
}
func (h receivedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].rpos, h[j].rpos = i, j
}
func (h *receivedHeap) Push(v any) {
	it := v.(*pendingItem)
	it.rpos = len(*h)
	*h = append(*h, it)
}
func (h *receivedHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
