package preflight

import (
	"testing"
	"time"
)

// A measured time keeps its size under a millisecond: never "0s" for
// something that took time.
func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                    "0s",
		400 * time.Nanosecond:                "400ns",
		4*time.Microsecond + 512:             "4.51µs",
		250 * time.Microsecond:               "250µs",
		999*time.Microsecond + 4:             "999µs",
		1500 * time.Microsecond:              "1.5ms",
		12*time.Millisecond + 345678:         "12.35ms",
		2*time.Second + 345*time.Millisecond: "2.35s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

// The JSON report's elapsed_ms keeps a sub-millisecond time too.
func TestElapsedMS(t *testing.T) {
	r := NewReport("c", "caddyfile", false)
	r.Add("a", "", Pass("fast").Timed(3*time.Microsecond))
	r.Add("b", "", Pass("faster").Timed(300*time.Nanosecond))
	r.Add("c", "", Pass("slow").Timed(1234567*time.Nanosecond))
	for id, want := range map[string]float64{"a": 0.003, "b": 0.0003, "c": 1.23} {
		if c := r.Find(id)[0]; c.ElapsedMS == nil || *c.ElapsedMS != want {
			t.Errorf("%s: elapsed_ms %v, want %v", id, c.ElapsedMS, want)
		}
	}
}
