package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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

// The header every admin POST needs (internal/server's adminHeader).
const (
	adminHeader      = "X-Keygate-Admin"
	adminHeaderValue = "1"
)

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
	var stats struct{ Records int }
	if err := json.Unmarshal([]byte(getBody(t, admin+"/v1/cache")), &stats); err != nil {
		t.Fatal(err)
	}
	return stats.Records
}
