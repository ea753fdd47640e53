package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call of this test process returned. It is drawn at random
// from below the kernel's ephemeral range where there is room: a port from
// that range (what listening on :0 gives) can be taken by any outgoing
// connection of any process before the gateway binds it, and test runs make
// thousands of those.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	lo, hi := quietPorts()
	for range 200 {
		addr := "127.0.0.1:0"
		if hi > lo {
			addr = fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no free port the test process has not handed out already")
	return 0
}

// quietPorts is the range FreePort draws from: from 10000 up to the start
// of the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), or an
// empty range (then the kernel chooses) where that leaves too little room.
func quietPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var start, end int
	if _, err := fmt.Sscan(string(b), &start, &end); err != nil || start < 12000 {
		return 0, 0
	}
	return 10000, start
}

var (
	portsMu    sync.Mutex
	portsGiven = make(map[int]bool)
)
