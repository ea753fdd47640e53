package preflight

import "testing"

func TestAdminVerdict(t *testing.T) {
	for _, tc := range []struct {
		listen   string
		disabled bool
		want     Status
	}{
		{"", true, OK},
		{"localhost:2019", false, OK},
		{"127.0.0.1:2019", false, OK},
		{"[::1]:2019", false, OK},
		{"tcp/127.0.0.1:2019", false, OK},
		{"unix//run/qrphgate/admin.sock", false, OK},
		{":2019", false, Fail},
		{"0.0.0.0:2019", false, Fail},
		{"tcp/0.0.0.0:2019", false, Fail},
		{"[::]:2019", false, Fail},
		{"203.0.113.7:2019", false, Fail},
		{"10.1.2.3:2019", false, Warn},
		{"admin.internal:2019", false, Warn},
		{"no-port", false, Warn},
	} {
		v := AdminVerdict(tc.listen, tc.disabled)
		if v.Status != tc.want || v.Reason == "" || (v.Status != OK && v.Fix == "") {
			t.Errorf("%q (disabled %v): %+v, want %s", tc.listen, tc.disabled, v, tc.want)
		}
	}
}
