package redistest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary, run again by TestCrashedTestLeavesNoServer,
// start servers and wait to be killed.
const childEnv = "REDISTEST_CHILD_PIDS"

// TestChildStartsServers is the crashed test: it starts a server and a
// Cluster, writes their PIDs to the file $REDISTEST_CHILD_PIDS names and
// waits to be killed. It does nothing when run by itself.
func TestChildStartsServers(t *testing.T) {
	out := os.Getenv(childEnv)
	if out == "" {
		t.Skip("run by TestCrashedTestLeavesNoServer")
	}
	srv := Start(t, Options{})
	cl := StartCluster(t, ClusterOptions{})
	pids := []string{strconv.Itoa(srv.PID())}
	for _, n := range cl.Nodes() {
		pids = append(pids, strconv.Itoa(n.PID()))
	}
	if err := os.WriteFile(out+".tmp", []byte(strings.Join(pids, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		t.Fatal(err)
	}
	select {} // until SIGKILL
}

// A test process killed with SIGKILL (it runs no cleanup) leaves none of
// the Redis processes it started: the kernel kills them with it.
func TestCrashedTestLeavesNoServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux has a parent-death signal")
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestChildStartsServers$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+pidFile)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var pids []int
	waitFor(t, 90*time.Second, "the child test to start its servers", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("the child test ended before it was killed:\n%s", logs.String())
		default:
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false, err.Error()
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			pid, err := strconv.Atoi(sc.Text())
			if err != nil || pid <= 0 {
				t.Fatalf("bad pid %q in %s", sc.Text(), b)
			}
			pids = append(pids, pid)
		}
		return true, ""
	})
	if len(pids) != 4 {
		t.Fatalf("%d PIDs, want a server's and a cluster's three", len(pids))
	}
	t.Cleanup(func() { // never leave them, even when the test fails
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("process %d is not running before the kill", pid)
		}
	}
	_ = cmd.Process.Kill()
	<-done
	waitFor(t, 10*time.Second, "the servers to die with their test", func() (bool, string) {
		for _, pid := range pids {
			if alive(pid) {
				return false, fmt.Sprintf("process %d (%s) still runs", pid, comm(pid))
			}
		}
		return true, ""
	})
}

// alive reports whether pid runs (a zombie, dead but not yet reaped by
// whoever inherited it, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// Every port a deployment listens on, the cluster bus included, comes from
// testenv.FreePort: below the kernel's ephemeral range (where outgoing
// connections take their ports) and never handed out twice.
func TestPortsComeFromFreePort(t *testing.T) {
	lo, hi, err := ephemeralRange()
	if err != nil || lo < 12000 {
		t.Skipf("FreePort draws from the whole range here (ephemeral range %d-%d, %v)", lo, hi, err)
	}
	cl := StartCluster(t, ClusterOptions{})
	ctx := context.Background()
	seen := map[int]string{}
	for _, n := range cl.Nodes() {
		bus, err := n.Do(ctx, "CONFIG", "GET", "cluster-port").StringSlice()
		if err != nil || len(bus) != 2 {
			t.Fatalf("CONFIG GET cluster-port: %v %v", bus, err)
		}
		busPort, err := strconv.Atoi(bus[1])
		if err != nil || busPort == 0 {
			t.Fatalf("%s has no cluster bus port of its own (%q): it listens on port+10000, which nobody checked", n.Addr(), bus[1])
		}
		for what, p := range map[string]int{"port": n.Port(), "bus port": busPort} {
			if p >= lo && p <= hi {
				t.Errorf("%s %s %d is in the ephemeral range %d-%d", n.Addr(), what, p, lo, hi)
			}
			if other, ok := seen[p]; ok {
				t.Errorf("%s %s %d is also %s", n.Addr(), what, p, other)
			}
			seen[p] = n.Addr() + " " + what
		}
	}
}

func ephemeralRange() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	_, err = fmt.Sscan(string(b), &lo, &hi)
	return lo, hi, err
}
