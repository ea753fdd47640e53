package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIPAllowlist(t *testing.T) {
	l, err := ParseIPAllowlist([]string{"203.0.113.10/32", "198.51.100.0/24", "2001:db8::/32", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"203.0.113.10": true, "203.0.113.11": false, "198.51.100.200": true, "198.51.101.1": false,
		"2001:db8::1": true, "2001:db9::1": false, "192.0.2.7": true, "192.0.2.8": false,
		"::ffff:198.51.100.9": true, // IPv4-mapped matches the IPv4 prefix
		"fe80::1%eth0":        false,
		"127.0.0.1":           false,
	} {
		if got := l.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	if l.AllowsAny() || len(l.Prefixes()) != 4 || !strings.Contains(l.String(), "192.0.2.7/32") {
		t.Fatalf("list %s", l)
	}
	var zero IPAllowlist
	if zero.Contains(netip.MustParseAddr("203.0.113.10")) {
		t.Fatal("the zero allowlist must allow nothing")
	}
}

func TestIPAllowlistAny(t *testing.T) {
	l, err := ParseIPAllowlist([]string{"any"})
	if err != nil || !l.AllowsAny() || !l.Contains(netip.MustParseAddr("8.8.8.8")) || l.String() != "any" {
		t.Fatalf("any: %v %v", l, err)
	}
}

func TestIPAllowlistRejections(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "at least one"},
		{[]string{"any", "10.0.0.0/8"}, "cannot be combined"},
		{[]string{"10.0.0.0/8", "any"}, "cannot be combined"},
		{[]string{"10.0.0.1/8"}, "host bits"},
		{[]string{"example.com"}, "not an IP address"},
		{[]string{"10.0.0.0/33"}, "not an IP address"},
		{[]string{"fe80::1%eth0"}, "zone"},
		{[]string{"::ffff:0:0/80"}, "IPv4-mapped"},
		{[]string{""}, "not an IP address"},
	} {
		_, err := ParseIPAllowlist(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.in, err, tc.want)
		}
	}
	l, err := ParseIPAllowlist([]string{"::ffff:10.0.0.0/104"})
	if err != nil || !l.Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Fatalf("mapped prefix: %v", err)
	}
}
