//go:build linux

package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// mountTmpfs mounts a tmpfs of the given size on a fresh directory and
// unmounts it when the test ends. It needs root (CAP_SYS_ADMIN): without
// it the test is skipped with the reason, under CI as well, because an
// unprivileged container cannot mount anything; that is not a missing
// package .ci/run could install.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("skipping: mounting a %s tmpfs needs root (CAP_SYS_ADMIN), which this environment lacks: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes to path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// readiness is the readiness endpoint's answer: its HTTP status and the
// spool check's status and message.
type readiness struct {
	code           int
	spool, message string
}

// readSpoolReadiness asks url (a modulus_health route) for the spool
// check's result.
func readSpoolReadiness(t *testing.T, url string) readiness {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Checks map[string]struct{ Status, Message string } `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("readiness answer: %v", err)
	}
	r := readiness{code: resp.StatusCode}
	for name, c := range rep.Checks {
		if strings.HasPrefix(name, "spool:") {
			r.spool, r.message = c.Status, c.Message
		}
	}
	return r
}

// TestWebhookFullDiskDoesNotParkEvents (issue 19): while the spool's disk
// is full, failed deliveries cannot be rescheduled on disk and the
// readiness endpoint reports the spool unwritable (503, the spool check
// unavailable); once space is back, readiness recovers and those events
// follow retry_backoff (here at most 1 s) instead of waiting for their
// claim's lease (forward_timeout + 1 minute, here 3 minutes). Every
// acknowledged event is delivered.
func TestWebhookFullDiskDoesNotParkEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	disk := mountTmpfs(t, "2m")
	p := newGatewayPorts(t)
	app := newRecordingApp(t)
	app.setStatus(http.StatusServiceUnavailable)
	serveApp(t, p.app, app)
	conf := fmt.Sprintf(`{
	admin %s
	auto_https off
}

# No host name: plain HTTP has no certificate for readiness to check.
http://:%d {
	modulus_webhook {
		decryption_key  {env.QRPHGATE_E2E_KEY_1}
		allow_ips       127.0.0.1/32
		forward_to      http://127.0.0.1:%d/payments
		forward_timeout 2m
		sign_secret     {env.QRPHGATE_E2E_SIGN}
		spool           %s
		redeliver_for   30m
		retry_backoff   100ms 1s
	}
}

http://127.0.0.1:%d {
	handle /readyz {
		modulus_health {
			check_interval 1s
			check_timeout  1s
		}
	}
}
`, p.adminAddr(), p.http, p.app, filepath.Join(disk, "webhooks.spool"), p.metrics)
	g := e2e.Start(t, e2e.Options{Caddyfile: conf, AdminAddr: p.adminAddr(), Env: gatewayEnv()})
	url := fmt.Sprintf("http://127.0.0.1:%d/webhooks/modulus", p.http)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", p.metrics)
	var ready readiness
	defer func() {
		if t.Failed() {
			t.Logf("the last readiness answer: %d, spool %s: %s", ready.code, ready.spool, ready.message)
		}
	}()
	e2e.WaitFor(t, 30*time.Second, "the spool check's first result", func() bool {
		ready = readSpoolReadiness(t, readyz)
		return ready.spool == "ok"
	})
	if ready.code != http.StatusOK {
		t.Fatalf("readiness with room on the disk: %d, spool %s: %s", ready.code, ready.spool, getBody(t, readyz))
	}

	// Room to free later, then events until the spool itself fills the disk.
	reserve := filepath.Join(disk, "reserve")
	if err := os.WriteFile(reserve, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1500)
	var (
		mu    sync.Mutex
		acked []string
		full  int
	)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				mu.Lock()
				stop := full >= 5
				mu.Unlock()
				if stop {
					return
				}
				ref := fmt.Sprintf("ORDER-DISK-%d-%03d", w, i)
				a := postWebhook(t, http.DefaultClient, url, sealWebhook(t, `{"action":"QRPH_SUCCESS","referenceNumber":"`+ref+`","pad":"`+pad+`"}`), nil)
				mu.Lock()
				switch {
				case a.status == 200:
					acked = append(acked, ref)
				case a.status == 503 && strings.Contains(a.body, "spool_unavailable"):
					full++
				default:
					t.Errorf("%s: %d %s", ref, a.status, a.body)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fillDisk(t, filepath.Join(disk, "filler"))
	failed := func() int { return strings.Count(g.Logs(), "could not reschedule the event") }
	e2e.WaitFor(t, 60*time.Second, "reschedules failing on the full disk", func() bool { return failed() >= 10 })
	e2e.WaitFor(t, 30*time.Second, "readiness reporting the spool unwritable", func() bool {
		ready = readSpoolReadiness(t, readyz)
		return ready.spool == "unavailable"
	})
	if ready.code != http.StatusServiceUnavailable {
		t.Fatalf("readiness with the spool unwritable: %d (%s: %s), want 503", ready.code, ready.spool, ready.message)
	}
	t.Logf("readiness on the full disk: %d, spool %s: %s", ready.code, ready.spool, ready.message)

	// Space comes back and the app recovers.
	if err := os.Remove(reserve); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	// Readiness recovers before the deliveries, whose writes (the delivered
	// events' history) take some of the room again.
	e2e.WaitFor(t, 30*time.Second, "readiness recovering once space came back", func() bool {
		ready = readSpoolReadiness(t, readyz)
		return ready.spool == "ok" && ready.code == http.StatusOK
	})
	app.setStatus(http.StatusOK)
	freed := time.Now()
	mu.Lock()
	refs := append([]string(nil), acked...)
	mu.Unlock()
	// The bound is a quarter of the 3-minute lease: events that follow
	// retry_backoff arrive within seconds, parked ones only after the lease.
	deadline := time.Now().Add(45 * time.Second)
	missing := len(refs)
	for time.Now().Before(deadline) {
		missing = 0
		for _, ref := range refs {
			if app.count(ref) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d events acknowledged, %d refused while the disk was full, %d failed reschedules; %d still undelivered %v after space came back and the app recovered",
		len(refs), full, failed(), missing, time.Since(freed).Round(time.Second))
	if missing != 0 {
		t.Fatalf("%d of %d acknowledged events were parked for their lease instead of following retry_backoff", missing, len(refs))
	}
}
