package envoy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/docs"
)

// The invariants of the nginx and Caddy configs, as for the Envoy ones
// (invariants_test.go): read from the text, no proxy run (that is
// cmd/keygate/proxy_e2e_test.go), each with mutants that must break it.

const (
	nginxFile = "nginx/keygate.conf"
	caddyFile = "caddy/Caddyfile"
	// nginxAuthPath is the internal location auth_request asks.
	nginxAuthPath = "/keygate-auth"
	// nginxKeygate is the upstream block that is keygate itself.
	nginxKeygate = "keygate"
)

// A textInvariant is a promise of a config read as text.
type textInvariant struct {
	name  string
	check func([]*directive) error
	docs  []string // the sentences it keeps, verbatim, whitespace aside
}

// identityNames are the identity and example record headers a client must
// never get to the upstream (README: "keygate's identity headers
// (`x-keygate-key-id`, `-tenant`, `-scopes`, `-reason`)").
var identityNames = slices.Concat(identityHeaders, recordHeaders)

var (
	docNeverUpstream = "denials and a keygate outage never reach the upstream"
	docClientCopy    = "a client's copy of an identity or record header never reaches the upstream"
	docIdentityNames = "keygate's identity headers (`x-keygate-key-id`, `-tenant`, `-scopes`, `-reason`)"
	docHops          = "nginx appends it to the client's header (`$proxy_add_x_forwarded_for`); Caddy replaces the client's header with it (it appends only for clients in its own `trusted_proxies`); a client-written entry, even one naming a trusted proxy, never becomes the client address."
	docUnderscores   = "nginx (`underscores_in_headers off`, its default) and Caddy (2.11.4 and later, and `request_header -*_*` in the shipped Caddyfile) never let such names through at all."
)

var nginxInvariants = []textInvariant{
	{"every proxied location asks keygate first", checkNginxAuth, []string{docNeverUpstream}},
	{"nginx trusts no client-written address", checkNginxHops, []string{docHops}},
	{"nginx replaces identity, record and credential headers", checkNginxHeaders, []string{docClientCopy, docIdentityNames}},
	{"nginx drops header names with underscores", checkNginxUnderscores, []string{docUnderscores}},
}

// nginxLocation is a location and the settings it inherits.
type nginxLocation struct {
	loc  *directive
	auth string // auth_request in effect, "" if none
}

// nginxLocations returns every location, nested ones included, with the
// auth_request each inherits (nginx inherits it into nested locations).
func nginxLocations(ds []*directive, auth string) []nginxLocation {
	var out []nginxLocation
	for _, d := range ds {
		if d.name != "location" {
			out = append(out, nginxLocations(d.block, auth)...)
			continue
		}
		a := auth
		for _, r := range d.block {
			if r.name == "auth_request" {
				a = r.arg(0)
			}
		}
		out = append(out, nginxLocation{d, a})
		out = append(out, nginxLocations(d.block, a)...)
	}
	return out
}

// proxiesUpstream reports whether a location passes requests to anything
// but keygate.
func proxiesUpstream(loc *directive) bool {
	for _, p := range find(loc.block, "proxy_pass") {
		if !strings.HasPrefix(p.arg(0), "http://"+nginxKeygate+"/") {
			return true
		}
	}
	return false
}

func checkNginxAuth(ds []*directive) error {
	var errs []error
	var authLoc *directive
	for _, l := range nginxLocations(ds, "") {
		if slices.Equal(l.loc.args, []string{"=", nginxAuthPath}) {
			authLoc = l.loc
		}
		if proxiesUpstream(l.loc) && l.auth != nginxAuthPath {
			errs = append(errs, fmt.Errorf("%v passes requests upstream with auth_request %q", l.loc, l.auth))
		}
	}
	for _, a := range find(ds, "auth_request") {
		if a.arg(0) != nginxAuthPath {
			errs = append(errs, fmt.Errorf("%v: want auth_request %s", a, nginxAuthPath))
		}
	}
	switch {
	case authLoc == nil:
		errs = append(errs, fmt.Errorf("no exact location = %s", nginxAuthPath))
	case len(find(authLoc.block, "internal")) == 0:
		errs = append(errs, fmt.Errorf("%v is not internal: clients could call keygate through it", authLoc))
	}
	return errors.Join(errs...)
}

func checkNginxHops(ds []*directive) error {
	var errs []error
	for _, name := range []string{"set_real_ip_from", "real_ip_header", "real_ip_recursive"} {
		for _, d := range find(ds, name) {
			errs = append(errs, fmt.Errorf("%v: $remote_addr, and so the X-Forwarded-For entry keygate believes, would come from a client-written header", d))
		}
	}
	for _, l := range nginxLocations(ds, "") {
		xff := ""
		for _, d := range l.loc.block {
			if d.name == "proxy_set_header" && strings.EqualFold(d.arg(0), "X-Forwarded-For") {
				xff = d.arg(1)
			}
		}
		if xff != "" && xff != "$proxy_add_x_forwarded_for" {
			errs = append(errs, fmt.Errorf("%v sets X-Forwarded-For %s, want $proxy_add_x_forwarded_for", l.loc, xff))
		}
		if slices.Equal(l.loc.args, []string{"=", nginxAuthPath}) && xff == "" {
			errs = append(errs, fmt.Errorf("%v does not send keygate X-Forwarded-For $proxy_add_x_forwarded_for", l.loc))
		}
	}
	return errors.Join(errs...)
}

// checkNginxHeaders: in every location that proxies upstream, each
// identity and record header is set (replacing a client's copy) to ""
// or to keygate's answer for that very header, and the credentials to "".
func checkNginxHeaders(ds []*directive) error {
	var errs []error
	for _, l := range nginxLocations(ds, "") {
		if !proxiesUpstream(l.loc) {
			continue
		}
		answers := map[string]string{} // variable -> the $upstream_http_ it holds
		set := map[string]string{}     // header (lower case) -> value
		for _, d := range l.loc.block {
			switch d.name {
			case "auth_request_set":
				answers[d.arg(0)] = d.arg(1)
			case "proxy_set_header":
				set[strings.ToLower(d.arg(0))] = d.arg(1)
			}
		}
		for h, v := range set {
			if !isKeygateOwned(h) || v == "" {
				continue
			}
			if want := "$upstream_http_" + strings.ReplaceAll(h, "-", "_"); answers[v] != want {
				errs = append(errs, fmt.Errorf("%v: %s set to %s, want \"\" or a variable auth_request_set binds to %s", l.loc, h, v, want))
			}
		}
		for _, h := range identityNames {
			if _, ok := set[h]; !ok {
				errs = append(errs, fmt.Errorf("%v: no proxy_set_header %s: a client's copy reaches the upstream", l.loc, h))
			}
		}
		for _, h := range credentialHeaders {
			if v, ok := set[h]; !ok || v != "" {
				errs = append(errs, fmt.Errorf("%v: want proxy_set_header %s \"\" (the credential stops at nginx)", l.loc, h))
			}
		}
	}
	return errors.Join(errs...)
}

func checkNginxUnderscores(ds []*directive) error {
	var errs []error
	for _, d := range find(ds, "underscores_in_headers") {
		if d.arg(0) != "off" {
			errs = append(errs, fmt.Errorf("%v, want off", d))
		}
	}
	for _, d := range find(ds, "ignore_invalid_headers") {
		if d.arg(0) != "on" {
			errs = append(errs, fmt.Errorf("%v, want on", d))
		}
	}
	return errors.Join(errs...)
}

// TestProxyInvariants checks the nginx and Caddy configs.
func TestProxyInvariants(t *testing.T) {
	for _, tc := range proxyConfigs {
		ds := parseProxyFile(t, tc.file, tc.parse)
		for _, inv := range tc.invariants {
			t.Run(tc.file+"/"+inv.name, func(t *testing.T) {
				if err := inv.check(ds); err != nil {
					t.Errorf("%v\nthe documentation promises: %s", err, strings.Join(inv.docs, " / "))
				}
			})
		}
	}
}

// TestProxyInvariantsCiteDocs requires each quoted sentence in the docs.
func TestProxyInvariantsCiteDocs(t *testing.T) {
	text, err := docs.Text("..")
	if err != nil {
		t.Fatal(err)
	}
	all := collapseSpace(text)
	for _, tc := range proxyConfigs {
		for _, inv := range tc.invariants {
			if len(inv.docs) == 0 {
				t.Errorf("%s: invariant %q quotes no documentation", tc.file, inv.name)
			}
			for _, s := range inv.docs {
				if !strings.Contains(all, collapseSpace(s)) {
					t.Errorf("%q: the documentation (README.md, docs/) does not say %q", inv.name, s)
				}
			}
		}
	}
}

// proxyConfig is a proxy's config file, its parser and its invariants.
type proxyConfig struct {
	file       string
	parse      func(string) ([]*directive, error)
	invariants []textInvariant
}

var proxyConfigs = []proxyConfig{
	{nginxFile, parseNginx, nginxInvariants},
	{caddyFile, parseCaddyfile, caddyInvariants},
}

func parseProxyFile(t *testing.T, file string, parse func(string) ([]*directive, error)) []*directive {
	t.Helper()
	ds, err := parse(string(readFile(t, file)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return ds
}
