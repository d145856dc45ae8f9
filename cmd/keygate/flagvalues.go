package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// badValues collects the flag and KEYGATE_* values of a command that do
// not parse, so they are reported together with every other problem
// (pflag alone stops at the first).
type badValues struct{ errs []error }

// collect makes every flag of fs record a bad value in b instead of
// failing the parse; the flag keeps its default.
func collect(fs *pflag.FlagSet) *badValues {
	b := &badValues{}
	fs.VisitAll(func(f *pflag.Flag) { f.Value = collecting{Value: f.Value, name: f.Name, bad: b} })
	return b
}

func (b *badValues) err() error { return errors.Join(b.errs...) }

// collecting is a flag value that records its parse errors, named after
// the flag (a list value's *field.Error names an entry "[i]").
type collecting struct {
	pflag.Value
	name string
	bad  *badValues
}

func (c collecting) Set(s string) error {
	if err := c.Value.Set(s); err != nil {
		var l field.List
		for _, e := range field.Split(err) {
			if _, ok := e.(*field.Error); ok {
				l.Join(field.Prefix(e, c.name))
			} else {
				l.Addf(c.name, "%v", e)
			}
		}
		c.bad.errs = append(c.bad.errs, l.Err())
	}
	return nil
}

// prefixList is a list of IP addresses or CIDRs ("10.0.0.0/8",
// "192.0.2.7", "2001:db8::/32"), comma-separated or repeated; every bad
// entry is reported by its position.
type prefixList struct {
	into *[]netip.Prefix
	n    int // entries given so far, good or bad
}

func (p *prefixList) Set(s string) error {
	if p.n == 0 {
		*p.into = nil // the first value replaces the default
	}
	var l field.List
	for _, e := range strings.Split(s, ",") {
		i := p.n
		p.n++
		e = strings.TrimSpace(e)
		pfx, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil || a.Zone() != "" {
				l.Addf(fmt.Sprintf("[%d]", i), "%q: want an IP address or CIDR, e.g. 10.0.0.0/8", e)
				continue
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if pfx != pfx.Masked() {
			l.Addf(fmt.Sprintf("[%d]", i), "%q has host bits set (did you mean %s?)", e, pfx.Masked())
			continue
		}
		*p.into = append(*p.into, pfx)
	}
	return l.Err()
}

func (p *prefixList) String() string {
	s := make([]string, len(*p.into))
	for i, pfx := range *p.into {
		s[i] = pfx.String()
	}
	return "[" + strings.Join(s, ",") + "]"
}

func (p *prefixList) Type() string { return "cidrs" }

// callerKeyValue is --unknown-key-per.
type callerKeyValue struct{ into *extauthz.CallerKey }

func (c callerKeyValue) Set(s string) error { return c.into.UnmarshalText([]byte(s)) }
func (c callerKeyValue) String() string     { return c.into.String() }
func (c callerKeyValue) Type() string       { return "peer|client" }

// failureValue is --ratelimit-failure.
type failureValue struct{ into *ratelimit.Failure }

func (f failureValue) Set(s string) error { return f.into.UnmarshalText([]byte(s)) }
func (f failureValue) String() string     { return f.into.String() }
func (f failureValue) Type() string       { return "auto|deny|allow" }

// routesFile is --routes-file: the file is read and checked when the flag
// is set, so its problems are reported with every other one.
type routesFile struct {
	path string
	into **policy.Routes
}

func (r *routesFile) Set(path string) error {
	r.path, *r.into = path, nil
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(data)
	if err == nil {
		*r.into, err = policy.ParseRoutes(js)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (r *routesFile) String() string { return r.path }
func (r *routesFile) Type() string   { return "file" }
