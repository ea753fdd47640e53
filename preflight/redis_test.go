package preflight

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/qrphgate/qrphgate/store"
)

func TestPersistenceVerdict(t *testing.T) {
	durable := store.RedisPersistence{AppendOnly: "yes", AppendFsync: "always"}
	everysec := store.RedisPersistence{AppendOnly: "yes", AppendFsync: "everysec"}
	volatile := store.RedisPersistence{AppendOnly: "no", AppendFsync: "everysec", Save: "3600 1"}
	refused := fmt.Errorf("%w: ERR unknown command 'CONFIG'", store.ErrConfigRefused)
	down := fmt.Errorf("%w: redis config get: connection refused", store.ErrUnavailable)
	for _, tc := range []struct {
		name  string
		p     store.RedisPersistence
		err   error
		spool bool
		want  Status
		has   string
	}{
		{"durable spool", durable, nil, true, OK, "appendonly yes, appendfsync always"},
		{"everysec spool", everysec, nil, true, Warn, "last second"},
		{"volatile spool", volatile, nil, true, Warn, "restart loses"},
		{"volatile store", volatile, nil, false, OK, "holds no spool"},
		{"refused spool", store.RedisPersistence{}, refused, true, Warn, "unknown command 'CONFIG'"},
		{"refused store", store.RedisPersistence{}, refused, false, OK, "nothing here needs them"},
		{"down", store.RedisPersistence{}, down, true, Fail, "connection refused"},
		{"other", store.RedisPersistence{}, errors.New("boom"), false, Fail, "boom"},
	} {
		v := PersistenceVerdict(tc.p, tc.err, tc.spool)
		if v.Status != tc.want || !strings.Contains(v.Reason, tc.has) || (v.Status != OK && v.Fix == "") {
			t.Errorf("%s: %+v, want %s with %q", tc.name, v, tc.want, tc.has)
		}
	}
}
