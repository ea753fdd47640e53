package policy

import "testing"

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want Centavos
		ok   bool
	}{
		{"500.00", 50000, true},
		{"1.00", 100, true},
		{"99999.99", 9999999, true},
		{"0.01", 1, true},
		{"1234.56", 123456, true},
		{"98.00", 9800, true},
		{"500", 0, false},
		{"500.0", 0, false},
		{"500.000", 0, false},
		{"5.5", 0, false},
		{".50", 0, false},
		{"500.", 0, false},
		{"-1.00", 0, false},
		{"+1.00", 0, false},
		{"01.00", 0, false},
		{"1,000.00", 0, false},
		{"1e3.00", 0, false},
		{" 1.00", 0, false},
		{"1.00 ", 0, false},
		{"1.0a", 0, false},
		{"１.00", 0, false}, // full-width digit
		{"", 0, false},
		{"1234567890123456.00", 0, false},
		{"999999999999999.99", 99999999999999999, true},
	}
	for _, tc := range tests {
		got, err := ParseAmount(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCentavosString(t *testing.T) {
	for c, want := range map[Centavos]string{0: "0.00", 1: "0.01", 10: "0.10", 100: "1.00", 50000: "500.00", 9999999: "99999.99", -150: "-1.50"} {
		if got := c.String(); got != want {
			t.Errorf("Centavos(%d).String() = %q, want %q", int64(c), got, want)
		}
	}
}
