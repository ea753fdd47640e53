package store

// MemoryLen exposes the dedupe map size to tests.
func MemoryLen(m *Memory) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.dedupe)
}

// ErrServerDown exposes a rate window's failure between two tries of a
// server that is down.
var ErrServerDown = errServerDown

// BoltDelayedCommits is how many of the spool's commits waited for more writes.
func BoltDelayedCommits(s *BoltSpool) uint64 { return s.c.delayed() }
