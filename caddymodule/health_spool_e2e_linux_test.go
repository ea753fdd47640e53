package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qrphgate/qrphgate/internal/e2e"
	"github.com/qrphgate/qrphgate/proxy/health"
)

// TestHealthFileSpoolUnwritableAndBack runs the binary with a file spool
// and makes the spool unwritable under it, then writable again: the
// process's file size limit (RLIMIT_FSIZE, which a process may lower and
// raise again up to its hard limit) is set to 0, so every write to a
// regular file fails with EFBIG, as on a full or failing disk; readiness
// turns unavailable (503) at the next probe, and ok (200) once the limit is
// lifted.
func TestHealthFileSpoolUnwritableAndBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	admin, ops, hook, appPort := e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t), e2e.FreePort(t)
	g := e2e.Start(t, e2e.Options{AdminAddr: fmt.Sprintf("127.0.0.1:%d", admin), Env: gatewayEnv(), Caddyfile: fmt.Sprintf(`{
	admin 127.0.0.1:%d
}
http://127.0.0.1:%d {
	route /webhooks/modulus {
		modulus_webhook {
			decryption_key {env.QRPHGATE_E2E_KEY_1}
			allow_ips      127.0.0.1/32
			forward_to     http://127.0.0.1:%d/payments
			sign_secret    {env.QRPHGATE_E2E_SIGN}
			spool          spool/webhooks.spool
		}
	}
}
http://127.0.0.1:%d {
	modulus_health {
		check_interval 1s
	}
}
`, admin, hook, appPort, ops)})
	readyz := fmt.Sprintf("http://127.0.0.1:%d/", ops)
	spool := func() (int, health.Check) {
		resp, err := http.Get(readyz)
		if err != nil {
			return 0, health.Check{}
		}
		defer resp.Body.Close()
		var rep health.Report
		if json.NewDecoder(resp.Body).Decode(&rep) != nil {
			return 0, health.Check{}
		}
		for name, c := range rep.Checks {
			if strings.HasPrefix(name, "spool:") {
				return resp.StatusCode, c
			}
		}
		return resp.StatusCode, health.Check{}
	}
	waitSpool := func(what string, code int, st health.Status) health.Check {
		t.Helper()
		var c health.Check
		e2e.WaitFor(t, 30*time.Second, what, func() bool {
			var got int
			got, c = spool()
			return got == code && c.Status == st
		})
		return c
	}
	waitSpool("the spool ready", http.StatusOK, health.OK)

	setFileSizeLimit(t, g.Pid(), 0)
	if c := waitSpool("the unwritable spool to be unavailable", http.StatusServiceUnavailable, health.Unavailable); !strings.Contains(c.Message, "probe write") {
		t.Fatalf("spool check %+v", c)
	}
	setFileSizeLimit(t, g.Pid(), unix.RLIM_INFINITY)
	waitSpool("the spool writable again", http.StatusOK, health.OK)
}

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid (one of this
// user's: no privilege needed below the hard limit).
func setFileSizeLimit(t *testing.T, pid int, soft uint64) {
	t.Helper()
	var cur unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &cur); err != nil {
		t.Fatal(err)
	}
	if soft > cur.Max {
		soft = cur.Max
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: soft, Max: cur.Max}, nil); err != nil {
		t.Fatal(err)
	}
}
