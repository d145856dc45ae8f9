package policy

import "strings"

const (
	maxHeaders        = 32
	maxHeaderValueLen = 1024
)

// ReservedHeader reports why name may not be set from a record, or "" if it
// may: pseudo-headers, host, Envoy's and keygate's own headers, hop-by-hop
// headers and credentials.
func ReservedHeader(name string) string {
	switch {
	case strings.HasPrefix(name, ":"):
		return "pseudo-headers cannot be set"
	case strings.HasPrefix(name, "x-envoy-"):
		return "x-envoy-* headers are Envoy's"
	case strings.HasPrefix(name, "x-keygate-"):
		return "x-keygate-* headers are keygate's identity headers"
	case strings.HasPrefix(name, "x-forwarded-"):
		return "x-forwarded-* headers are set by proxies"
	}
	switch name {
	case "host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
		"upgrade", "content-length", "authorization", "proxy-authorization", "x-api-key", "cookie",
		"forwarded", "x-real-ip", "x-request-id":
		return "this header cannot be set from a key record"
	}
	return ""
}

func checkHeaders(bad func(string, string, ...any), h map[string]string) {
	if len(h) > maxHeaders {
		bad("headers", "%d headers, limit %d", len(h), maxHeaders)
	}
	for name, value := range h {
		field := "headers." + name
		switch {
		case !isToken(name) || len(name) > 128:
			bad(field, "name must be 1-128 lower-case token characters")
		case ReservedHeader(name) != "":
			bad(field, "%s", ReservedHeader(name))
		}
		if len(value) > maxHeaderValueLen {
			bad(field, "value is %d bytes, limit %d", len(value), maxHeaderValueLen)
		} else if !isHeaderValue(value) {
			bad(field, "value must be printable ASCII without CR, LF or NUL")
		}
	}
}

// IsHeaderName reports whether s is a non-empty lower-case RFC 9110 token,
// the form Envoy gives header names in.
func IsHeaderName(s string) bool { return isToken(s) }

// isToken reports whether s is a non-empty lower-case RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// isHeaderValue allows visible ASCII, space and tab.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}
