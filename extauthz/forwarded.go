package extauthz

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// forwarded reads the original request's method or URI from either
// convention: missing from both, repeated, or different in the two is an
// error code.
func forwarded(h http.Header, name, alt string) (string, string) {
	a, b := h.Values(name), h.Values(alt)
	switch {
	case len(a) > 1 || len(b) > 1:
		return "", errConflictForwarded
	case len(a) == 1 && len(b) == 1 && a[0] != b[0]:
		return "", errConflictForwarded
	case len(a) == 1 && a[0] != "":
		return a[0], ""
	case len(b) == 1 && b[0] != "":
		return b[0], ""
	}
	return "", errMissingForwarded
}

// forwardedHost reads X-Forwarded-Host: absent is "" (no host); repeated or
// comma-joined (a client's copy beside the proxy's) is an error code.
func forwardedHost(h http.Header) (string, string) {
	v := h.Values("X-Forwarded-Host")
	switch {
	case len(v) > 1 || (len(v) == 1 && strings.IndexByte(v[0], ',') >= 0):
		return "", errConflictForwarded
	case len(v) == 1:
		return v[0], ""
	}
	return "", ""
}

// clientAddr is the client's address for r: the connecting peer's, unless
// the peer is a trusted proxy. Then X-Forwarded-For (all its lines, in
// order) is walked from the right, and the first address that is not a
// trusted proxy is the client, as nginx's real_ip_recursive and Envoy's
// xff_num_trusted_hops read it; if every entry is trusted, the leftmost
// one. An entry that is not an address ends the walk with no client
// address, so CIDR rules deny. A header the client wrote can therefore
// only name addresses to the left of what a trusted proxy appended.
func (s *Server) clientAddr(r *http.Request) string {
	peer, ok := parseForwardedAddr(r.RemoteAddr)
	if !ok || !s.trusted(peer) {
		return addrString(peer, ok)
	}
	xff := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	if strings.TrimSpace(xff) == "" {
		return peer.String() // the trusted proxy is the client
	}
	client := peer
	entries := strings.Split(xff, ",")
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseForwardedAddr(strings.TrimSpace(entries[i]))
		if !ok {
			return ""
		}
		client = a
		if !s.trusted(a) {
			break
		}
	}
	return client.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseForwardedAddr reads "1.2.3.4", "2001:db8::1", "1.2.3.4:5678" or
// "[2001:db8::1]:80" (as RemoteAddr and some proxies write them), with
// IPv4-mapped IPv6 addresses unmapped and no zone.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func addrString(a netip.Addr, ok bool) string {
	if !ok {
		return ""
	}
	return a.String()
}

// sourcePeer is the CheckRequest source for a client address (nil if none).
func sourcePeer(addr string) *authv3.AttributeContext_Peer {
	if addr == "" {
		return nil
	}
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: addr},
	}}}
}
