package server

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// adminHeader must accompany every POST to the admin endpoint. A browser
// sends a header of its own choosing cross-origin only after a CORS
// preflight, which keygate never grants, so a web page cannot make keygate
// evict or purge (CSRF); curl and scripts just add it.
const (
	adminHeader      = "X-Keygate-Admin"
	adminHeaderValue = "1"
)

// adminGuard refuses, with 403 and a message saying why, what only a
// browser tricked by a web page would send:
//
//   - on a loopback listener, a Host that is not localhost or a loopback
//     IP (with any port): a DNS-rebinding page reaches 127.0.0.1 under its
//     own name, and could otherwise read /v1/config and profiles;
//   - any request with an Origin header, or a Sec-Fetch-Site of cross-site
//     or same-site (another port of localhost is same-site): browsers
//     send these for requests a page makes; a URL typed into the address
//     bar (Sec-Fetch-Site: none) and links within the pprof pages
//     (same-origin, no Origin on a GET) still work;
//   - a POST without X-Keygate-Admin: 1.
//
// Each refusal is logged at warn with the caller's address.
func adminGuard(next http.Handler, loopback bool, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		why := adminRefusal(r, loopback)
		if why == "" {
			next.ServeHTTP(w, r)
			return
		}
		log.Warn("admin: refused request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "why", why)
		http.Error(w, "keygate admin: "+why, http.StatusForbidden)
	})
}

// adminRefusal is why r is refused, or "" to serve it.
func adminRefusal(r *http.Request, loopback bool) string {
	switch {
	case loopback && !loopbackHost(r.Host):
		return "the Host header must be localhost, 127.0.0.1 or [::1] (with the port) on a loopback admin address"
	case len(r.Header.Values("Origin")) > 0:
		return "requests made by web pages (with an Origin header) are refused; use curl or another HTTP client"
	case fromOtherSite(r.Header.Get("Sec-Fetch-Site")):
		return "requests made by other sites' pages (Sec-Fetch-Site) are refused; use curl or another HTTP client"
	case r.Method == http.MethodPost && r.Header.Get(adminHeader) != adminHeaderValue:
		return "send the header " + adminHeader + ": " + adminHeaderValue + " with every POST, e.g. curl -X POST -H '" +
			adminHeader + ": " + adminHeaderValue + "' http://127.0.0.1:9901/v1/purge"
	}
	return ""
}

// fromOtherSite: the Fetch Metadata value a browser sends for a request a
// page of another site or another origin of the same site made.
func fromOtherSite(secFetchSite string) bool {
	s := strings.ToLower(strings.TrimSpace(secFetchSite))
	return s == "cross-site" || s == "same-site"
}

// loopbackHost: host (a Host header, port optional) is "localhost" or a
// loopback IP literal. No other name is trusted, not even one that
// resolves to 127.0.0.1 now: resolving it is what a rebinding attack
// controls.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
