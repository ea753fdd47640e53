package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IPAllowlist is a set of address prefixes. The zero value allows nothing;
// allowing every address takes the explicit word "any".
type IPAllowlist struct {
	prefixes []netip.Prefix
	any      bool
}

// ParseIPAllowlist parses CIDRs and bare addresses (taken as /32 or /128).
// "any" allows every address and must stand alone, so that it is never
// combined with a list by mistake.
func ParseIPAllowlist(entries []string) (IPAllowlist, error) {
	var l IPAllowlist
	if len(entries) == 0 {
		return l, errors.New("allow_ips needs at least one CIDR, or the word any")
	}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if strings.EqualFold(e, "any") {
			if len(entries) != 1 {
				return IPAllowlist{}, errors.New("allow_ips: any cannot be combined with addresses")
			}
			return IPAllowlist{any: true}, nil
		}
		var (
			p   netip.Prefix
			err error
		)
		if strings.Contains(e, "/") {
			p, err = netip.ParsePrefix(e)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(e); err == nil {
				if a.Zone() != "" {
					return IPAllowlist{}, fmt.Errorf("allow_ips: %q has a zone", e)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return IPAllowlist{}, fmt.Errorf("allow_ips: %q is not an IP address or CIDR", e)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return IPAllowlist{}, fmt.Errorf("allow_ips: %q mixes IPv4-mapped and IPv6 space", e)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p != p.Masked() {
			return IPAllowlist{}, fmt.Errorf("allow_ips: %q has host bits set (did you mean %s?)", e, p.Masked())
		}
		l.prefixes = append(l.prefixes, p)
	}
	return l, nil
}

// AllowsAny reports whether the list is the explicit "any".
func (l IPAllowlist) AllowsAny() bool { return l.any }

// Contains reports whether a is allowed. IPv4-mapped IPv6 addresses match
// IPv4 prefixes.
func (l IPAllowlist) Contains(a netip.Addr) bool {
	if l.any {
		return true
	}
	a = a.Unmap().WithZone("")
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Prefixes returns the allowed prefixes (nil for "any").
func (l IPAllowlist) Prefixes() []netip.Prefix { return append([]netip.Prefix(nil), l.prefixes...) }

// String lists the prefixes as configured.
func (l IPAllowlist) String() string {
	if l.any {
		return "any"
	}
	s := make([]string, len(l.prefixes))
	for i, p := range l.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}
