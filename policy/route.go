package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Routes maps requests to required scopes for meshes that cannot set
// Envoy's per-route context extensions (Istio's CUSTOM action). The most
// specific rule wins: the longest path_prefix among rules whose host and
// method match; on a tie, the first in the file.
type Routes struct {
	Rules []RouteRule `json:"routes"`

	// namesHost and namesMethod: some rule has a host or a method, so the
	// request's must be read strictly (ParseHost, upper-case token).
	namesHost, namesMethod bool
}

// RouteRule is one entry of the routes file.
type RouteRule struct {
	// Host matches the request host (port ignored): exact, "*.suffix", or
	// "" / "*" for any host.
	Host string `json:"host,omitempty"`
	// Method matches the HTTP method (upper case in the file; a request
	// whose method is not an upper-case token is denied invalid_method). A
	// GET rule also matches HEAD. "" for any method.
	Method string `json:"method,omitempty"`
	// PathPrefix matches whole path segments: "/orders" matches "/orders"
	// and "/orders/1" but not "/ordersx". Required; "/" matches every path.
	PathPrefix string `json:"path_prefix"`
	// Scopes the key must grant. An empty list means "any valid key".
	Scopes []string `json:"scopes"`

	host hostPattern
}

// ParseRoutes decodes and validates a routes file in JSON form, reporting
// every problem at once, each naming its field.
func ParseRoutes(data []byte) (*Routes, error) {
	r, err := parseRoutes(data)
	return r, redactErr(err)
}

func parseRoutes(data []byte) (*Routes, error) {
	var r Routes
	if err := decodeStrict("routes", data, &r); err != nil {
		return nil, err
	}
	var errs []error
	for i := range r.Rules {
		rule := &r.Rules[i]
		errs = append(errs, rule.compile(i)...)
		r.namesHost = r.namesHost || rule.host.name != ""
		r.namesMethod = r.namesMethod || rule.Method != ""
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &r, nil
}

// compile checks rule i and prepares its host pattern.
func (rule *RouteRule) compile(i int) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("routes[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	if rule.Host != "" && rule.Host != "*" {
		hp, ok := parseHostPattern(rule.Host)
		if !ok {
			bad("host", "%q: want a lower-case host name, \"*.suffix\" or \"*\"", rule.Host)
		}
		rule.host = hp
	}
	if rule.Method != "" && (!isToken(strings.ToLower(rule.Method)) || strings.ToUpper(rule.Method) != rule.Method) {
		bad("method", "%q: want an upper-case HTTP method", rule.Method)
	}
	if !strings.HasPrefix(rule.PathPrefix, "/") || !CanonicalPath(rule.PathPrefix) {
		bad("path_prefix", "%q: want a normalised path starting with /", rule.PathPrefix)
	}
	for j, s := range rule.Scopes {
		if !validScope(s) {
			bad(fmt.Sprintf("scopes[%d]", j), "%q: want 1-128 of [A-Za-z0-9:._/*-]", s)
		}
	}
	return errs
}

// Match returns the scopes required for a request, or why the request
// cannot be matched: InvalidHost when a rule names a host and the request's
// is not a plain host[:port] (see ParseHost), InvalidMethod when a rule
// names a method and the request's is not an upper-case token. A request
// no rule matches needs no scope. path must be without its query string.
func (r *Routes) Match(authority, method, path string) (scopes []string, reason Reason) {
	i, reason := r.rule(authority, method, path)
	if i < 0 {
		return nil, reason
	}
	return r.Rules[i].Scopes, reason
}

// rule is Match's choice: the index of the rule, or -1 for none.
func (r *Routes) rule(authority, method, path string) (int, Reason) {
	var host string
	if r.namesHost {
		var ok bool
		if host, ok = ParseHost(authority); !ok {
			return -1, InvalidHost
		}
	}
	if r.namesMethod && !isMethod(method) {
		return -1, InvalidMethod
	}
	best := -1
	for i := range r.Rules {
		rule := &r.Rules[i]
		if rule.host.name != "" && !rule.host.match(host) {
			continue
		}
		if !methodMatches(rule.Method, method) || !pathHasPrefix(path, rule.PathPrefix) {
			continue
		}
		if best < 0 || len(rule.PathPrefix) > len(r.Rules[best].PathPrefix) {
			best = i
		}
	}
	return best, Allowed
}

// methodMatches: a rule without a method matches every method; a GET rule
// also matches HEAD, which servers answer with the GET handler.
func methodMatches(rule, method string) bool {
	return rule == "" || rule == method || (rule == "GET" && method == "HEAD")
}

// isMethod reports whether m is an RFC 9110 token without lower-case
// letters: nginx refuses other methods, Envoy and Go pass them on, and an
// upstream may read "post" as POST, so a method rule could be dodged by case.
func isMethod(m string) bool {
	return m != "" && strings.ToUpper(m) == m && isToken(strings.ToLower(m))
}

func pathHasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	// ';' starts path parameters that many servers strip ("/admin;x" is
	// served as "/admin"), so it ends a segment here too.
	return path[len(prefix)] == '/' || path[len(prefix)] == ';'
}

// CanonicalPath reports whether path (without query) is in the form Envoy
// produces with normalize_path and merge_slashes: no "//", no "." or ".."
// segments, no encoded slash, backslash or dot, no backslash. Rules match
// only canonical paths, so "/public/../admin" cannot dodge an /admin rule.
// Path parameters (";") are refused too.
func CanonicalPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	// ';' starts path parameters many servers strip ("/admin;x/users" is
	// served as "/admin/users"), so rules could be dodged with it.
	if strings.Contains(path, "//") || strings.ContainsAny(path, "\\;") {
		return false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	// Envoy's normalize_path decodes %-escapes of unreserved characters,
	// and a backend would decode "/%61dmin" to "/admin": refuse them, and
	// encoded slashes and backslashes.
	for i := strings.IndexByte(path, '%'); i >= 0; i = strings.IndexByte(path, '%') {
		if i+2 >= len(path) {
			return false
		}
		hi, lo := unhex(path[i+1]), unhex(path[i+2])
		if hi < 0 || lo < 0 {
			return false
		}
		if c := byte(hi<<4 | lo); c == '/' || c == '\\' || isUnreserved(c) {
			return false
		}
		path = path[i+3:]
	}
	return true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
