package store

// SweepBolt runs one de-duplication sweep and returns the marks it dropped.
func SweepBolt(s *BoltSpool) int { return s.sweep() }
