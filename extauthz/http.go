package extauthz

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/keygate/keygate/policy"
)

// HTTP authorization mode: the same decisions as Check, for proxies that ask
// over plain HTTP. Two entry points:
//
//   - EnvoyPrefix (Envoy's http_service with path_prefix "/ext_authz"): the
//     original request is this request: its method, its path after the
//     prefix, its Host (:authority) and its headers.
//   - ForwardAuthPath (nginx auth_request, Caddy forward_auth, Traefik
//     ForwardAuth): the original method, URI and host arrive in
//     X-Forwarded-Method/-Uri/-Host (or nginx's X-Original-Method/-URI).
//     A request without a method or URI, or whose two conventions
//     disagree (a client-sent copy the proxy did not overwrite), is 400:
//     guessing could match a laxer route rule. The host comes only from
//     X-Forwarded-Host (a proxy's Host is its upstream's name).
//
// 200 allows: the identity and record headers are response headers for the
// proxy to copy upstream, and x-envoy-auth-headers-to-remove names the
// credential (and spoofed x-keygate-*) headers for Envoy to strip. Any other
// status denies, with the reason in x-keygate-reason and the JSON body.
//
// The client address is the last X-Forwarded-For entry, the one the proxy
// in front of keygate appended; without one, CIDR rules deny (the proxy's
// own address is never mistaken for the client's).
const (
	EnvoyPrefix     = "/ext_authz"
	ForwardAuthPath = "/auth"

	headerReason        = "x-keygate-reason"
	headerEnvoyRemove   = "x-envoy-auth-headers-to-remove"
	maxForwardedHeaders = 200 // more headers than Envoy's default limit (100) is not a proxy's request
)

// HTTPHandler serves the HTTP authorization mode (see EnvoyPrefix and
// ForwardAuthPath); other paths are 404, which every proxy treats as deny.
func (s *Server) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, bad := checkRequestFromHTTP(r)
		switch {
		case bad == errNotEntryPoint:
			http.NotFound(w, r)
		case bad != "":
			writeBadRequest(w, bad)
		default:
			ctx := context.WithValue(r.Context(), callerKey{}, r.RemoteAddr)
			writeHTTPDecision(w, s.check(ctx, req, false))
		}
	})
}

// Answers to forward-auth requests that do not say what to authorize.
const (
	errNotEntryPoint     = "not_found"
	errMissingForwarded  = "missing_forwarded_request"   // no original method or URI
	errConflictForwarded = "ambiguous_forwarded_request" // X-Forwarded-* and X-Original-* disagree
)

func writeBadRequest(w http.ResponseWriter, reason string) {
	body := `{"error":"bad_request","reason":"` + reason + `"}` + "\n"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerReason, reason)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(body))
}

// checkRequestFromHTTP rebuilds the CheckRequest Envoy would have sent over
// gRPC, so both modes share one decision path, or says why it cannot (an
// err* code).
func checkRequestFromHTTP(r *http.Request) (*authv3.CheckRequest, string) {
	hr := &authv3.AttributeContext_HttpRequest{Headers: make(map[string]string, len(r.Header)+1)}
	uri := r.URL.RequestURI()
	switch {
	case uri == EnvoyPrefix || strings.HasPrefix(uri, EnvoyPrefix+"/") || strings.HasPrefix(uri, EnvoyPrefix+"?"):
		hr.Method, hr.Host, hr.Path = r.Method, r.Host, strings.TrimPrefix(uri, EnvoyPrefix)
		if hr.Path == "" || hr.Path[0] == '?' {
			hr.Path = "/" + hr.Path
		}
	case r.URL.Path == ForwardAuthPath:
		var badMethod, badURI string
		hr.Method, badMethod = forwarded(r.Header, "X-Forwarded-Method", "X-Original-Method")
		hr.Path, badURI = forwarded(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
		if bad := cmp.Or(badMethod, badURI); bad != "" {
			return nil, bad
		}
		hr.Host = r.Header.Get("X-Forwarded-Host")
	default:
		return nil, errNotEntryPoint
	}
	n := 0
	for name, values := range r.Header {
		if n++; n > maxForwardedHeaders {
			break
		}
		// Repeated headers are joined as Envoy joins them, so two
		// credentials in one header name stay ambiguous.
		hr.Headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	if hr.Host != "" {
		hr.Headers[":authority"] = hr.Host
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: hr},
		Source:  sourcePeer(r.Header),
	}}
	return req, ""
}

// forwarded reads the original request's method or URI from either
// convention: missing from both, or different in the two, is an error code.
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

// sourcePeer is the client address: the last X-Forwarded-For entry (added
// by the proxy that called keygate), or none.
func sourcePeer(h http.Header) *authv3.AttributeContext_Peer {
	xff := h.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return nil
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	last = strings.TrimSpace(last)
	if host, _, err := net.SplitHostPort(last); err == nil {
		last = host // "1.2.3.4:5678", "[::1]:80"
	}
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: last},
	}}}
}

// identityHeaders are keygate's own headers. A proxy may not show keygate
// the client's copies (Istio sends only the headers it lists), so an HTTP
// allow asks Envoy to remove every one it does not set.
var identityHeaders = []string{headerKeyID, headerTenant, headerScopes, headerReason}

// httpRemovals is headers_to_remove plus the identity headers not set.
func httpRemovals(ok *authv3.OkHttpResponse) []string {
	rm := slices.Clone(ok.GetHeadersToRemove())
	for _, name := range identityHeaders {
		set := slices.ContainsFunc(ok.GetHeaders(), func(o *corev3.HeaderValueOption) bool { return o.GetHeader().GetKey() == name })
		if !set && !slices.Contains(rm, name) {
			rm = append(rm, name)
		}
	}
	return rm
}

// writeHTTPDecision writes resp as the HTTP answer.
func writeHTTPDecision(w http.ResponseWriter, resp *authv3.CheckResponse) {
	h := w.Header()
	if ok := resp.GetOkResponse(); ok != nil && resp.GetStatus().GetCode() == 0 {
		for _, o := range ok.GetHeaders() {
			h.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
		}
		h.Set(headerEnvoyRemove, strings.Join(httpRemovals(ok), ","))
		w.WriteHeader(http.StatusOK)
		return
	}
	denied := resp.GetDeniedResponse()
	for _, o := range denied.GetHeaders() {
		h.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	h.Set(headerReason, resp.GetStatus().GetMessage())
	status := int(denied.GetStatus().GetCode())
	if status < 400 || status > 599 {
		status = policy.InternalError.HTTPStatus() // never a 2xx or 3xx for a deny
	}
	h.Set("Content-Length", strconv.Itoa(len(denied.GetBody())))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(denied.GetBody()))
}
