package policy

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// hostPattern matches a host name exactly or, with wildcard, any name ending
// in "."+suffix (one or more labels; the bare suffix does not match).
type hostPattern struct {
	name     string
	wildcard bool
}

// match compares a host from ParseHost (lower case, no port). A wildcard
// never matches an IP literal.
func (p hostPattern) match(host string) bool {
	if p.wildcard {
		if isIPLiteral(host) {
			return false
		}
		return len(host) > len(p.name)+1 && strings.HasSuffix(host, p.name) && host[len(host)-len(p.name)-1] == '.'
	}
	return host == p.name
}

func parseHostPattern(s string) (hostPattern, bool) {
	p := hostPattern{name: s}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		p = hostPattern{name: rest, wildcard: true}
	}
	if !isHostname(p.name) {
		return hostPattern{}, false
	}
	if a, err := netip.ParseAddr(p.name); err == nil {
		if p.wildcard {
			return hostPattern{}, false
		}
		p.name = a.String() // requests' IPv6 literals are compared in this form
	}
	return p, true
}

// isIPLiteral reports whether a host from ParseHost is an IP address: IPv6
// literals have colons; a valid name ending in a number is an IPv4 address.
func isIPLiteral(host string) bool {
	if strings.IndexByte(host, ':') >= 0 {
		return true
	}
	i := strings.LastIndexByte(host, '.')
	return isNumber(host[i+1:])
}

// isHostname accepts lower-case DNS names and IP literals (unbracketed, no
// zone), without port.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 || s != strings.ToLower(s) {
		return false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == ""
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func parseHosts(bad func(string, string, ...any), in []string) []hostPattern {
	var out []hostPattern
	for i, s := range in {
		p, ok := parseHostPattern(s)
		if !ok {
			bad(fmt.Sprintf("allowed_hosts[%d]", i), "%q: want a lower-case host name without port, optionally starting with \"*.\"", s)
			continue
		}
		out = append(out, p)
	}
	return out
}

// origin is an allowed referrer: scheme, host pattern and optional port.
type origin struct {
	scheme string
	host   hostPattern
	port   string
}

func parseOrigins(bad func(string, string, ...any), in []string) []origin {
	var out []origin
	for i, s := range in {
		o, err := parseOrigin(s)
		if err != nil {
			bad(fmt.Sprintf("allowed_referrers[%d]", i), "%q: %v", s, err)
			continue
		}
		out = append(out, o)
	}
	return out
}

func parseOrigin(s string) (origin, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return origin{}, fmt.Errorf("want an origin like https://app.example.com")
	}
	if strings.ContainsAny(rest, "/?#@") {
		return origin{}, fmt.Errorf("want an origin without path, query or user")
	}
	host, port := splitHostPort(rest)
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return origin{}, fmt.Errorf("port %q: want 1-65535", port)
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = "" // requests' default ports are compared as absent
		}
	}
	hp, ok := parseHostPattern(host)
	if !ok {
		return origin{}, fmt.Errorf("host %q is not a lower-case host name", host)
	}
	return origin{scheme: scheme, host: hp, port: port}, nil
}

// match matches the origin of an Origin header value or a Referer URL
// against o: its host must be one ParseHost accepts (the rules of a
// request's :authority: no characters a host name cannot hold, a decimal
// port), compared as allowed_hosts compare it. Default ports are treated as
// absent.
func (o origin) match(u *url.URL) bool {
	if u.Scheme != o.scheme || u.User != nil {
		return false
	}
	host, ok := ParseHost(u.Host)
	if !ok {
		return false
	}
	port := u.Port()
	if (o.scheme == "https" && port == "443") || (o.scheme == "http" && port == "80") {
		port = ""
	}
	return port == o.port && o.host.match(host)
}

// splitHostPort splits "host:port", "[v6]:port", "[v6]" and "host" without
// allocating; brackets are removed. Anything else is returned as the host.
func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, ""
		}
		host, rest := s[1:end], s[end+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, p
		}
		if rest != "" {
			return s, ""
		}
		return host, ""
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
