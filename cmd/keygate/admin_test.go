package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/filestore"
)

// adminReq is one request to the admin endpoint and the status it must get.
type adminReq struct {
	name    string
	method  string
	path    string
	host    string // Host header; "" is the listener's own address
	headers map[string]string
	want    int
	body    string // the response body contains this
}

var withAdminHeader = map[string]string{adminHeader: adminHeaderValue}

// send makes r against base (http://host:port) and checks the outcome. No
// response may carry CORS grants: keygate never lets a page read it.
func (r adminReq) send(t *testing.T, base string) {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != r.want || !strings.Contains(string(body), r.body) {
		t.Errorf("%s %s (Host %q, %v): %d %q; want %d and a body with %q",
			r.method, r.path, r.host, r.headers, resp.StatusCode, redact(string(body)), r.want, r.body)
	}
	for name := range resp.Header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-allow") {
			t.Errorf("response grants CORS: %s", name)
		}
	}
}

// TestAdminGuard: on a loopback admin address, curl-shaped requests with
// a loopback Host work (POSTs with X-Keygate-Admin: 1); what a web page
// could make a browser send (cross-site forms and fetches, a DNS-rebound
// Host, a CORS preflight) gets 403 and changes nothing.
func TestAdminGuard(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme"))
	s := serve(t, env, ring.all, "--admin-addr", "127.0.0.1:0")
	admin := s.logAddr(t, "admin endpoint", "admin_addr")
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("decision %v, want allowed (and cached)", o)
	}
	const hdr = "X-Keygate-Admin: 1"
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example",
		"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
	refused := []adminReq{
		{"curl POST without the header", "POST", "/v1/purge", "", nil, 403, hdr},
		{"evict without the header", "POST", "/v1/evict?id=" + k.ID, "", nil, 403, hdr},
		{"header with another value", "POST", "/v1/purge", "", map[string]string{adminHeader: "true"}, 403, hdr},
		{"cross-site form POST", "POST", "/v1/purge", "", form, 403, "Origin"},
		{"no-cors text/plain POST, Origin only", "POST", "/v1/purge", "",
			map[string]string{"Content-Type": "text/plain", "Origin": "null"}, 403, "Origin"},
		{"CORS preflight", "OPTIONS", "/v1/purge", "", map[string]string{"Origin": "https://evil.example",
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-keygate-admin"}, 403, "Origin"},
		{"page on another localhost port", "GET", "/v1/config", "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "Sec-Fetch-Site"},
		{"cross-site profile request", "GET", "/debug/pprof/profile?seconds=2", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"},
		{"fetch with an Origin", "GET", "/v1/cache", "", map[string]string{"Origin": "http://127.0.0.1:3000"}, 403, "Origin"},
		{"DNS rebinding read", "GET", "/v1/config", "rebind.evil.example:" + port, nil, 403, "Host"},
		{"DNS rebinding POST, header set", "POST", "/v1/purge", "rebind.evil.example:" + port, withAdminHeader, 403, "Host"},
		{"name that resolves to loopback", "GET", "/v1/cache", "127.0.0.1.nip.io:" + port, nil, 403, "Host"},
		{"localhost as a subdomain", "GET", "/v1/cache", "localhost.evil.example:" + port, nil, 403, "Host"},
		{"0.0.0.0", "GET", "/debug/pprof/", "0.0.0.0:" + port, nil, 403, "Host"},
	}
	for _, r := range refused {
		t.Run("refused/"+r.name, func(t *testing.T) { r.send(t, admin) })
	}
	if n := cacheRecords(t, admin); n != 1 {
		t.Errorf("after the refused requests the cache holds %d records, want 1 (nothing evicted or purged)", n)
	}
	if !strings.Contains(s.logs.String(), `"msg":"admin: refused request"`) {
		t.Error("refusals are not logged")
	}

	allowed := []adminReq{
		{"cache stats", "GET", "/v1/cache", "", nil, 200, "Records"},
		{"config, Host localhost", "GET", "/v1/config", "localhost:" + port, nil, 200, "--admin-addr"},
		{"Host [::1]", "GET", "/v1/cache", "[::1]:" + port, nil, 200, "Records"},
		{"Host without a port", "GET", "/v1/cache", "LocalHost", nil, 200, "Records"},
		{"pprof typed into the address bar", "GET", "/debug/pprof/", "", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, 200, "goroutine"},
		{"link within the pprof pages", "GET", "/debug/pprof/goroutine?debug=1", "", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200, "goroutine"},
		{"GET on a POST endpoint", "GET", "/v1/purge", "", nil, 405, ""},
		{"evict with the header", "POST", "/v1/evict?id=" + k.ID, "", withAdminHeader, 204, ""},
		{"purge with the header", "POST", "/v1/purge", "", withAdminHeader, 204, ""},
	}
	for _, r := range allowed {
		t.Run("allowed/"+r.name, func(t *testing.T) { r.send(t, admin) })
	}
	if n := cacheRecords(t, admin); n != 0 {
		t.Errorf("after evict and purge the cache holds %d records, want 0", n)
	}
}

func cacheRecords(t *testing.T, admin string) int {
	t.Helper()
	var stats map[string]int
	if err := json.Unmarshal([]byte(getBody(t, admin+"/v1/cache")), &stats); err != nil {
		t.Fatal(err)
	}
	return stats["Records"]
}

// TestAdminGuardOffLoopback: on an address that is not loopback (a pod IP,
// behind NetworkPolicy) any Host is accepted, since callers name it in
// ways keygate cannot know; POSTs still need the header and pages are
// still refused.
func TestAdminGuardOffLoopback(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	store, err := filestore.OpenOrCreate(context.Background(), filepath.Join(t.TempDir(), "keys.yaml"), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := extauthz.NewServer(extauthz.DefaultConfig(), store, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	h := adminHandler(srv, log, func() map[string]string { return map[string]string{"--admin-addr": "0.0.0.0:9901"} }, false)
	hs := httptest.NewServer(h) // a loopback listener, served as if it were not
	defer hs.Close()

	for _, r := range []adminReq{
		{"any Host", "GET", "/v1/config", "keygate.keygate.svc:9901", nil, 200, "0.0.0.0:9901"},
		{"POST with the header", "POST", "/v1/purge", "10.1.2.3:9901", withAdminHeader, 204, ""},
	} {
		t.Run("allowed/"+r.name, func(t *testing.T) { r.send(t, hs.URL) })
	}
	for _, r := range []adminReq{
		{"POST without the header", "POST", "/v1/purge", "10.1.2.3:9901", nil, 403, adminHeader},
		{"cross-site form POST", "POST", "/v1/purge", "", map[string]string{"Origin": "https://evil.example",
			"Content-Type": "application/x-www-form-urlencoded"}, 403, "Origin"},
		{"cross-site read", "GET", "/v1/config", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"},
	} {
		t.Run("refused/"+r.name, func(t *testing.T) { r.send(t, hs.URL) })
	}
}

// An admin or metrics address without a host binds loopback; any host
// given, including every interface, is kept as written.
func TestLoopbackDefault(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{":9090", "127.0.0.1:9090"},
		{":0", "127.0.0.1:0"},
		{"0.0.0.0:9090", "0.0.0.0:9090"},
		{"[::]:9090", "[::]:9090"},
		{"127.0.0.1:9090", "127.0.0.1:9090"},
		{"[::1]:9090", "[::1]:9090"},
		{"localhost:9090", "localhost:9090"},
		{"", ""},           // off
		{"9090", "9090"},   // no colon: left for net.Listen to reject
		{"a:b:c", "a:b:c"}, // likewise
		{"10.1.2.3:9090", "10.1.2.3:9090"},
	} {
		if got := loopbackDefault(tt.in); got != tt.want {
			t.Errorf("loopbackDefault(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
