package envoy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

var caddyInvariants = []textInvariant{
	{"every request passes forward_auth first", checkCaddyAuth, []string{docNeverUpstream}},
	{"Caddy trusts no client-written address", checkCaddyHops, []string{docHops}},
	{"Caddy replaces identity, record and credential headers", checkCaddyHeaders, []string{docClientCopy, docIdentityNames}},
	{"Caddy drops header names with underscores first", checkCaddyUnderscores, []string{docUnderscores}},
}

// caddyHandlers are the directives that answer from, or pass to, the
// protected service.
var caddyHandlers = []string{"reverse_proxy", "php_fastcgi", "file_server"}

// isMatcher reports whether a Caddyfile argument is a request matcher.
func isMatcher(arg string) bool {
	return strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, "@") || arg == "*"
}

// caddySites returns the site blocks (every top-level block but the
// global options).
func caddySites(ds []*directive) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name != "" && d.block != nil {
			out = append(out, d)
		}
	}
	return out
}

// checkCaddyAuth: every handler that reaches the service sits in a route
// after an unconditional forward_auth to keygate's /auth, which only asks
// and copies (no handle_response that could serve on keygate's error).
func checkCaddyAuth(ds []*directive) error {
	var errs []error
	for _, site := range caddySites(ds) {
		for _, name := range caddyHandlers {
			for _, h := range find(site.block, name) {
				if !caddyGuarded(site.block, h) {
					errs = append(errs, fmt.Errorf("%v is not in a route after an unconditional forward_auth", h))
				}
			}
		}
		fas := find(site.block, "forward_auth")
		if len(fas) == 0 {
			errs = append(errs, fmt.Errorf("site %s has no forward_auth", site.name))
		}
		for _, fa := range fas {
			if isMatcher(fa.arg(0)) {
				errs = append(errs, fmt.Errorf("%v: a matcher lets other requests skip keygate", fa))
			}
			for _, d := range fa.block {
				switch {
				case d.name == "uri" && d.arg(0) != "/auth":
					errs = append(errs, fmt.Errorf("%v, want uri /auth", d))
				case d.name != "uri" && d.name != "copy_headers":
					errs = append(errs, fmt.Errorf("forward_auth holds %v: only uri and copy_headers", d))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// caddyGuarded reports whether h sits directly in a route block, inside
// ds, after a forward_auth without a matcher.
func caddyGuarded(ds []*directive, h *directive) bool {
	for _, r := range find(ds, "route") {
		if isMatcher(r.arg(0)) {
			continue
		}
		i := slices.Index(r.block, h)
		if i < 0 {
			continue
		}
		return slices.ContainsFunc(r.block[:i], func(d *directive) bool {
			return d.name == "forward_auth" && !isMatcher(d.arg(0))
		})
	}
	return false
}

func checkCaddyHops(ds []*directive) error {
	var errs []error
	for _, name := range []string{"trusted_proxies", "trusted_proxies_strict", "client_ip_headers"} {
		for _, d := range find(ds, name) {
			errs = append(errs, fmt.Errorf("%v: Caddy would append to, not replace, X-Forwarded-For a client wrote", d))
		}
	}
	for _, d := range find(ds, "header_up") {
		if n := strings.ToLower(strings.TrimLeft(d.arg(0), "+-")); strings.HasPrefix(n, "x-forwarded-") || strings.HasPrefix(n, "x-original-") || n == "x-real-ip" {
			errs = append(errs, fmt.Errorf("%v: the forwarded request and address are Caddy's to set", d))
		}
	}
	return errors.Join(errs...)
}

// checkCaddyHeaders: forward_auth copies every identity and record header
// keygate sets (Caddy deletes a client's copy of each first), a client's
// x-keygate-reason (never in an allow) is dropped, the credentials are
// dropped after forward_auth, and nothing else sets a keygate header.
func checkCaddyHeaders(ds []*directive) error {
	var errs []error
	for _, site := range caddySites(ds) {
		var copied, dropped []string
		for _, fa := range find(site.block, "forward_auth") {
			for _, c := range find(fa.block, "copy_headers") {
				for _, a := range c.args {
					if strings.Contains(a, ">") {
						errs = append(errs, fmt.Errorf("%v: %s renames: the client's copy of its name is not deleted", c, a))
					}
					copied = append(copied, strings.ToLower(a))
				}
			}
		}
		for _, d := range find(site.block, "request_header") {
			n := strings.ToLower(d.arg(0))
			if strings.HasPrefix(n, "-") && !isMatcher(n) {
				dropped = append(dropped, n[1:])
				continue
			}
			if isKeygateOwned(strings.TrimLeft(n, "+>?")) || isKeygateOwned(strings.TrimLeft(strings.ToLower(d.arg(1)), "+-?>")) {
				errs = append(errs, fmt.Errorf("%v sets a header only keygate may set", d))
			}
		}
		for _, d := range find(site.block, "header_up") {
			if isKeygateOwned(strings.TrimLeft(d.arg(0), "+-?>")) {
				errs = append(errs, fmt.Errorf("%v changes a header only keygate may set", d))
			}
		}
		for _, h := range identityNames {
			if !slices.Contains(copied, h) && !slices.Contains(dropped, h) {
				errs = append(errs, fmt.Errorf("site %s: %s neither copied from keygate nor dropped: a client's copy reaches the upstream", site.name, h))
			}
		}
		for _, h := range slices.Concat(identityHeaders[:3], recordHeaders) {
			if !slices.Contains(copied, h) {
				errs = append(errs, fmt.Errorf("site %s: copy_headers lacks %s", site.name, h))
			}
		}
		for _, h := range credentialHeaders {
			if !caddyDropsAfterAuth(site.block, h) {
				errs = append(errs, fmt.Errorf("site %s: no request_header -%s after forward_auth, before the upstream", site.name, h))
			}
		}
	}
	return errors.Join(errs...)
}

// caddyDropsAfterAuth reports whether a route drops header h between its
// forward_auth and its reverse_proxy.
func caddyDropsAfterAuth(ds []*directive, h string) bool {
	for _, r := range find(ds, "route") {
		fa := slices.IndexFunc(r.block, func(d *directive) bool { return d.name == "forward_auth" })
		rp := slices.IndexFunc(r.block, func(d *directive) bool { return d.name == "reverse_proxy" })
		if fa < 0 || rp < fa {
			continue
		}
		if slices.ContainsFunc(r.block[fa:rp], func(d *directive) bool {
			return d.name == "request_header" && strings.EqualFold(d.arg(0), "-"+h)
		}) {
			return true
		}
	}
	return false
}

func checkCaddyUnderscores(ds []*directive) error {
	for _, site := range caddySites(ds) {
		for _, r := range find(site.block, "route") {
			if len(r.block) == 0 || r.block[0].name != "request_header" || r.block[0].arg(0) != "-*_*" {
				return fmt.Errorf("%v: want request_header -*_* first, before keygate or anything else sees the request", r)
			}
		}
	}
	return nil
}
