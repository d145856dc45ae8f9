package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/policy"
)

// checkFlags rejects values the server's defaults would otherwise hide (a
// zero in extauthz.Config means "default") and maps --stale-ttl 0 and a
// negative --store-read-rate to the Config's "disabled".
func (f *serveFlags) checkFlags() error {
	var errs []error
	c := &f.cfg
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--found-ttl", c.FoundTTL}, {"--not-found-ttl", c.NotFoundTTL}, {"--lookup-timeout", c.LookupTimeout},
		{"--shutdown-timeout", f.shutdownTimeout}, {"--pepper-refresh", f.pepperRefresh}, {"--vault-timeout", f.store.timeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0, got %s", d.flag, d.v))
		}
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"--cache-size", c.CacheSize}, {"--negative-cache-size", c.NegativeCacheSize}, {"--store-read-burst", c.StoreReadBurst}} {
		if n.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0, got %d", n.flag, n.v))
		}
	}
	if c.StaleTTL < 0 {
		errs = append(errs, fmt.Errorf("--stale-ttl: must be >= 0 (0 disables), got %s", c.StaleTTL))
	}
	if f.usageInterval < 0 {
		errs = append(errs, fmt.Errorf("--usage-interval: must be >= 0 (0 disables), got %s", f.usageInterval))
	}
	if f.journalPoll < 0 {
		errs = append(errs, fmt.Errorf("--journal-poll: must be >= 0 (0 disables), got %s", f.journalPoll))
	}
	if f.shutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay: must be >= 0, got %s", f.shutdownDelay))
	}
	if c.UnknownKeyRate == 0 {
		errs = append(errs, errors.New("--unknown-key-rate: must be > 0, or negative for unlimited"))
	}
	if c.UnknownKeyBurst <= 0 {
		errs = append(errs, fmt.Errorf("--unknown-key-burst: must be > 0, got %d", c.UnknownKeyBurst))
	}
	if c.StoreReadRate == 0 {
		errs = append(errs, errors.New("--store-read-rate: must be > 0, or negative for unlimited"))
	}
	if c.MaxRequestBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("--max-request-bytes: %d is under 64 KiB (Envoy's header limit is 60 KiB)", c.MaxRequestBytes))
	}
	switch f.unknownKeyPer {
	case "peer":
	case "client":
		c.UnknownKeyPer = extauthz.PerClient
	default:
		errs = append(errs, fmt.Errorf("--unknown-key-per: %q: want peer or client", f.unknownKeyPer))
	}
	var err error
	if c.TrustedProxies, err = parsePrefixes("--trusted-proxies", f.trustedProxies); err != nil {
		errs = append(errs, err)
	}
	for _, h := range []struct{ flag, v string }{{"--key-prefix", c.KeyPrefix}, {"--key-header", c.KeyHeader}, {"--auth-header", c.AuthHeader}} {
		if h.v == "" {
			errs = append(errs, fmt.Errorf("%s: must not be empty", h.flag))
		}
	}
	return errors.Join(errs...)
}

// loadRoutes reads the optional routes file (YAML or JSON).
func loadRoutes(path string) (*policy.Routes, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--routes-file: %w", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("--routes-file %s: %w", path, err)
	}
	routes, err := policy.ParseRoutes(js)
	if err != nil {
		return nil, fmt.Errorf("--routes-file %s: %w", path, err)
	}
	return routes, nil
}

// parsePrefixes reads CIDRs or single addresses ("10.0.0.0/8",
// "192.0.2.7", "2001:db8::/32"), reporting every bad entry by position.
func parsePrefixes(flag string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				errs = append(errs, fmt.Errorf("%s[%d]: %q: want an IP address or CIDR, e.g. 10.0.0.0/8", flag, i, s))
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p != p.Masked() {
			errs = append(errs, fmt.Errorf("%s[%d]: %q has host bits set (did you mean %s?)", flag, i, s, p.Masked()))
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
