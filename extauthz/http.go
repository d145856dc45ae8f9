package extauthz

import (
	"cmp"
	"context"
	"net/http"
	"strconv"
	"strings"

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
//     A request without a method or URI, with one of them repeated, or
//     whose two conventions disagree (a client-sent copy the proxy did not
//     overwrite), is 400: guessing could match a laxer route rule. The host
//     comes only from X-Forwarded-Host (a proxy's Host is its upstream's
//     name); a repeated or comma-joined one is 400 too.
//
// 200 allows: the identity and record headers are response headers for the
// proxy to copy upstream, and x-envoy-auth-headers-to-remove names the
// credential, identity and record headers for Envoy to strip. Any other
// status denies, with the reason in x-keygate-reason and the JSON body.
//
// The client address is the connecting peer's, unless the peer is one of
// Config.TrustedProxies: then it is the rightmost X-Forwarded-For entry
// that is not (see clientAddr).
const (
	EnvoyPrefix     = "/ext_authz"
	ForwardAuthPath = "/auth"

	headerEnvoyRemove = "x-envoy-auth-headers-to-remove"
	// maxForwardedHeaders: more header lines than twice Envoy's default
	// limit (100) is not a proxy's request. Over it, the request is denied
	// request_too_large rather than read in part.
	maxForwardedHeaders = 200
)

// HTTPHandler serves the HTTP authorization mode (see EnvoyPrefix and
// ForwardAuthPath); other paths are 404, which every proxy treats as deny.
func (s *Server) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, bad := s.checkRequestFromHTTP(r)
		switch {
		case bad == errNotEntryPoint:
			http.NotFound(w, r)
		case bad != "":
			writeBadRequest(w, bad)
		default:
			ctx := context.WithValue(r.Context(), callerKey{}, r.RemoteAddr)
			writeHTTPDecision(w, s.check(ctx, req, nil, &s.plain))
		}
	})
}

// Answers to forward-auth requests that do not say what to authorize.
const (
	errNotEntryPoint     = "not_found"
	errMissingForwarded  = "missing_forwarded_request"   // no original method or URI
	errConflictForwarded = "ambiguous_forwarded_request" // repeated, or X-Forwarded-* and X-Original-* disagree
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
// err* code). A request over the header limits becomes one Check denies
// request_too_large, never one read in part.
func (s *Server) checkRequestFromHTTP(r *http.Request) (*authv3.CheckRequest, string) {
	hr := &authv3.AttributeContext_HttpRequest{Headers: make(map[string]string, len(r.Header)+1)}
	uri := r.URL.RequestURI()
	switch {
	case uri == EnvoyPrefix || strings.HasPrefix(uri, EnvoyPrefix+"/") || strings.HasPrefix(uri, EnvoyPrefix+"?"):
		hr.Method, hr.Host, hr.Path = r.Method, r.Host, strings.TrimPrefix(uri, EnvoyPrefix)
		if hr.Path == "" || hr.Path[0] == '?' {
			hr.Path = "/" + hr.Path
		}
	case r.URL.Path == ForwardAuthPath:
		var badMethod, badURI, badHost string
		hr.Method, badMethod = forwarded(r.Header, "X-Forwarded-Method", "X-Original-Method")
		hr.Path, badURI = forwarded(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
		hr.Host, badHost = forwardedHost(r.Header)
		if bad := cmp.Or(badMethod, badURI, badHost); bad != "" {
			return nil, bad
		}
	default:
		return nil, errNotEntryPoint
	}
	if headerLines(r.Header) > maxForwardedHeaders || len(uri)+headerBytes(r.Header) > s.cfg.MaxRequestBytes {
		return &authv3.CheckRequest{Attributes: s.tooLarge}, ""
	}
	for name, values := range r.Header {
		// Repeated headers are joined as Envoy joins them, so two
		// credentials in one header name stay ambiguous.
		hr.Headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	if hr.Host != "" {
		hr.Headers[":authority"] = hr.Host
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: hr},
		Source:  sourcePeer(s.clientAddr(r)),
	}}
	return req, ""
}

func headerLines(h http.Header) (n int) {
	for _, values := range h {
		n += len(values)
	}
	return n
}

func headerBytes(h http.Header) (n int) {
	for name, values := range h {
		for _, v := range values {
			n += len(name) + len(v)
		}
	}
	return n
}

// writeHTTPDecision writes resp as the HTTP answer.
func writeHTTPDecision(w http.ResponseWriter, resp *authv3.CheckResponse) {
	h := w.Header()
	if ok := resp.GetOkResponse(); ok != nil && resp.GetStatus().GetCode() == 0 {
		for _, o := range ok.GetHeaders() {
			h.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
		}
		h.Set(headerEnvoyRemove, strings.Join(ok.GetHeadersToRemove(), ","))
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
