package policy

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// hostPattern matches a host name exactly or, with wildcard, any name ending
// in "."+suffix (one or more labels; the bare suffix does not match).
type hostPattern struct {
	name     string
	wildcard bool
}

func (p hostPattern) match(host string) bool {
	if p.wildcard {
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
	return p, true
}

// isHostname accepts lower-case DNS names and IP literals, without port.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return true
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
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
	}
	hp, ok := parseHostPattern(host)
	if !ok {
		return origin{}, fmt.Errorf("host %q is not a lower-case host name", host)
	}
	return origin{scheme: scheme, host: hp, port: port}, nil
}

// matchOrigin matches an Origin header value or a Referer URL against o.
// Default ports are treated as absent.
func (o origin) match(u *url.URL) bool {
	if u.Scheme != o.scheme || u.User != nil {
		return false
	}
	port := u.Port()
	if (o.scheme == "https" && port == "443") || (o.scheme == "http" && port == "80") {
		port = ""
	}
	return port == o.port && o.host.match(strings.ToLower(u.Hostname()))
}

// requestHost lower-cases host and strips its port.
func requestHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
