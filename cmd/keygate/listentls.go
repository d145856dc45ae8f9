package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/internal/servetls"
)

// tlsFlags configure TLS on the gRPC and HTTP authorization listeners.
type tlsFlags struct {
	cert, key, clientCA string
	peers               []string
	reload              time.Duration
	plaintext           bool
}

func (t *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM server certificate (chain) for the gRPC and HTTP listeners; reloaded when it changes")
	fs.StringVar(&t.key, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&t.clientCA, "tls-client-ca", "", "PEM CA bundle: require and verify client certificates (mutual TLS)")
	fs.StringSliceVar(&t.peers, "tls-allowed-peers", nil, "client certificate SANs allowed to call (URI e.g. spiffe://cluster.local/ns/istio-system/sa/*, or DNS; trailing * is a prefix)")
	fs.DurationVar(&t.reload, "tls-reload", 10*time.Second, "how often the TLS files are checked for changes")
	fs.BoolVar(&t.plaintext, "plaintext", false, "serve without TLS on a non-loopback address (choose it explicitly: anyone who can reach keygate can test keys)")
}

func (t *tlsFlags) config() servetls.Config {
	return servetls.Config{CertFile: t.cert, KeyFile: t.key, ClientCAFile: t.clientCA, AllowedPeers: t.peers, Reload: t.reload}
}

// check refuses plain text on a non-loopback address unless --plaintext.
func (t *tlsFlags) check(addrs map[string]string) error {
	c := t.config()
	errs := []error{field.Rename(c.Validate(), func(n string) string { return "--" + n })}
	if t.reload == 0 {
		errs = append(errs, errors.New("--tls-reload: must be > 0"))
	}
	if t.plaintext && t.cert != "" {
		errs = append(errs, errors.New("--plaintext and --tls-cert: give one"))
	}
	if t.cert == "" && !t.plaintext {
		for flag, addr := range addrs {
			if addr != "" && !isLoopback(addr) {
				errs = append(errs, fmt.Errorf("%s %s is not a loopback address: give --tls-cert and --tls-key "+
					"(and --tls-client-ca for mutual TLS), or --plaintext to serve without TLS on purpose", flag, addr))
			}
		}
	}
	return errors.Join(errs...)
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

// open loads the TLS files, or returns nil for plain text.
func (t *tlsFlags) open(log *slog.Logger) (*servetls.Reloader, error) {
	if t.cert == "" {
		return nil, nil
	}
	return servetls.New(t.config(), log)
}
