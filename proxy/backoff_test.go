package proxy

import (
	"testing"
	"time"
)

func TestBackoffCeilingAndJitter(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second}
	for attempt, want := range []time.Duration{1, 2, 4, 8, 16, 30, 30, 30} {
		if got := b.Ceiling(attempt); got != want*time.Second {
			t.Errorf("Ceiling(%d) = %v, want %v", attempt, got, want*time.Second)
		}
	}
	if got := b.Ceiling(1000); got != 30*time.Second {
		t.Fatalf("Ceiling must not overflow: %v", got)
	}
	b.Rand = func() float64 { return 0.5 }
	if got := b.Delay(3); got != 4*time.Second {
		t.Fatalf("Delay(3) at r=0.5 = %v", got)
	}
	b.Rand = nil
	for i := 0; i < 1000; i++ {
		if d := b.Delay(2); d < 0 || d >= 4*time.Second {
			t.Fatalf("Delay(2) = %v outside [0, 4s)", d)
		}
	}
}
