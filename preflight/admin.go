package preflight

import (
	"net"
	"net/netip"
	"strings"
)

// AdminVerdict judges where Caddy's admin API listens: it changes the
// whole configuration (keys included) without authentication, so it must
// stay on loopback or a unix socket. listen is the admin "listen" value
// as Caddy takes it ("localhost:2019", "unix//run/caddy.sock",
// "tcp/0.0.0.0:2019"); disabled is admin off.
func AdminVerdict(listen string, disabled bool) Verdict {
	const fix = "keep the admin API on loopback (the default localhost:2019, `admin localhost:2019`) or a unix socket, or turn it off (`admin off`)"
	if disabled {
		return Pass("the admin API is off")
	}
	network, addr := "tcp", listen
	if n, rest, ok := strings.Cut(listen, "/"); ok && !strings.Contains(n, ":") {
		network, addr = strings.ToLower(n), rest
	}
	if strings.HasPrefix(network, "unix") {
		return Pass("the admin API listens on the unix socket " + addr)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Warning("cannot read the admin address "+listen+": "+err.Error(), fix)
	}
	if host == "" {
		return Failure("the admin API listens on every interface ("+listen+"): anyone who reaches it can replace the config and read its secrets' sources", fix)
	}
	if strings.EqualFold(host, "localhost") {
		return Pass("the admin API listens on loopback (" + listen + ")")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return Warning("the admin API listens on "+listen+"; cannot tell whether "+host+" is a public interface", fix)
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return Pass("the admin API listens on loopback (" + listen + ")")
	case ip.IsUnspecified():
		return Failure("the admin API listens on every interface ("+listen+"): anyone who reaches it can replace the config and read its secrets' sources", fix)
	case ip.IsPrivate() || ip.IsLinkLocalUnicast():
		return Warning("the admin API listens on the private address "+listen+": every host of that network can replace the config", fix)
	}
	return Failure("the admin API listens on the public address "+listen+": anyone can replace the config", fix)
}
