package policy

import (
	"net/netip"
	"strings"
)

// ParseHost reads a request's Host / :authority the way a proxy routes it:
// a host name or IP literal with an optional port, and nothing else. It
// returns the host lower-cased, without port or brackets (IPv6 literals in
// their canonical form), or ok false for anything a router could read
// differently than keygate:
//
//   - a port that is not a decimal number in 1-65535 written without
//     leading zeros ("api.example.com:1.admin.example.com", ":abc",
//     ":99999", ":0443", an empty port);
//   - a trailing dot, an empty or over-long label, userinfo ("user@host"),
//     spaces, percent-escapes or any other character a host name cannot
//     hold ([A-Za-z0-9_-] and dots only);
//   - an IPv6 literal without brackets or with a zone, and a name whose
//     last label is numeric but which is not a dotted-quad IPv4 address
//     ("127.1", "0x7f.1": URL parsers read those as IPv4 addresses).
//
// It allocates only to lower-case a host that is not already lower case,
// or to print an IPv6 literal canonically.
func ParseHost(authority string) (host string, ok bool) {
	host, port, ok := cutPort(authority)
	if !ok || (port != "" && !validPort(port)) {
		return "", false
	}
	if strings.HasPrefix(authority, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	if !validHostName(host) {
		return "", false
	}
	return lowerASCII(host), true
}

// cutPort splits "host", "host:port", "[v6]" and "[v6]:port". ok is false
// for a bracket that does not close or is followed by anything but a port,
// and for a name with more than one colon (an unbracketed IPv6 literal).
func cutPort(s string) (host, port string, ok bool) {
	if rest, isV6 := strings.CutPrefix(s, "["); isV6 {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", false
		}
		host, after := rest[:end], rest[end+1:]
		if after == "" {
			return host, "", true
		}
		port, ok = strings.CutPrefix(after, ":")
		return host, port, ok && port != ""
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && (port == "" || strings.IndexByte(port, ':') >= 0) {
		return "", "", false
	}
	return host, port, true
}

// validPort accepts 1-65535 in decimal, without sign or leading zeros.
func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// validHostName accepts DNS-style names of [A-Za-z0-9_-] labels (1-63
// characters, 253 in all, no trailing dot), and dotted-quad IPv4 addresses.
// A name whose last label is a number (as the URL standard reads it: all
// digits, or 0x and hex digits) must be an IPv4 address.
func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	last := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
			continue
		}
		if n := i - last; n == 0 || n > 63 {
			return false // empty label (leading, doubled or trailing dot) or too long
		}
		if i == len(s) && isNumber(s[last:]) {
			a, err := netip.ParseAddr(s)
			return err == nil && a.Is4()
		}
		last = i + 1
	}
	return true
}

func isNumber(label string) bool {
	if label == "" {
		return false
	}
	digits := "0123456789"
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		label, digits = label[2:], "0123456789abcdefABCDEF" // "0x" alone is 0
	}
	return strings.Trim(label, digits) == ""
}

// lowerASCII lower-cases s, allocating only when it has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
