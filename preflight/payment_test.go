package preflight

import (
	"testing"

	"github.com/qrphgate/qrphgate/policy"
)

func TestCheckTestAmount(t *testing.T) {
	for _, tc := range []struct {
		amount     string
		production bool
		want       policy.Centavos
		ok         bool
	}{
		{"1.00", true, 100, true},
		{"10.00", true, 1000, true},
		{"10.01", true, 0, false},
		{"500.00", true, 0, false},
		{"500.00", false, 50000, true},
		{"1", false, 0, false},
		{"1.5", false, 0, false},
		{"-1.00", false, 0, false},
		{"", true, 0, false},
	} {
		got, err := CheckTestAmount(tc.amount, tc.production)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q production=%v: %v %v", tc.amount, tc.production, got, err)
		}
	}
}
