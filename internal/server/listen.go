package server

import (
	"crypto/tls"
	"net"
	"net/netip"

	"github.com/keygate/keygate/internal/field"
)

// listeners are the server's sockets, opened by New so that a taken port
// is reported before anything runs; nil when off.
type listeners struct {
	grpc, http, admin, metrics net.Listener
}

// listen opens every configured listener, or none: on an error, those
// already open are closed. Errors name the address's flag.
func listen(cfg Config) (listeners, error) {
	var ls listeners
	for _, l := range []struct {
		name, addr string
		into       *net.Listener
	}{{"grpc-addr", cfg.GRPCAddr, &ls.grpc}, {"http-addr", cfg.HTTPAddr, &ls.http},
		{"admin-addr", loopbackDefault(cfg.AdminAddr), &ls.admin}, {"metrics-addr", loopbackDefault(cfg.MetricsAddr), &ls.metrics}} {
		if l.addr == "" {
			continue
		}
		lis, err := net.Listen("tcp", l.addr)
		if err != nil {
			ls.close()
			var fl field.List
			fl.Addf(l.name, "%v", err)
			return listeners{}, fl.Err()
		}
		*l.into = lis
	}
	return ls, nil
}

// close closes every open listener (a listener a server already closed
// only reports an error, which is ignored).
func (l listeners) close() {
	for _, c := range []net.Listener{l.grpc, l.http, l.admin, l.metrics} {
		if c != nil {
			c.Close()
		}
	}
}

// withTLS wraps lis in TLS when conf is set.
func withTLS(lis net.Listener, conf *tls.Config) net.Listener {
	if conf == nil {
		return lis
	}
	return tls.NewListener(lis, conf)
}

// loopbackDefault puts an address without a host (":9901") on loopback:
// the admin and metrics endpoints listen on every interface only when
// asked to ("0.0.0.0:9901"). (GRPCAddr and HTTPAddr instead refuse an
// address off loopback without TLS or Plaintext.)
func loopbackDefault(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// isLoopback reports whether a listen address is on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// isLoopbackAddr: the listener is on a loopback IP, so every legitimate
// caller is local and names it by a loopback Host.
func isLoopbackAddr(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
