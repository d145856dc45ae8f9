package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/extauthz"
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
			r.method, r.path, r.host, r.headers, resp.StatusCode, body, r.want, r.body)
	}
}

// TestAdminGuardOffLoopback: on an address that is not loopback (a pod IP,
// behind NetworkPolicy) any Host is accepted, since callers name it in
// ways keygate cannot know; POSTs still need the header and pages are
// still refused.
func TestAdminGuardOffLoopback(t *testing.T) {
	kf := newKeyFile(t, 0)
	srv, err := extauthz.NewServer(extauthz.DefaultConfig(), kf.fs, nil, discard)
	if err != nil {
		t.Fatal(err)
	}
	h := adminHandler(srv, discard, func() map[string]string { return map[string]string{"--admin-addr": "0.0.0.0:9901"} }, false)
	hs := httptest.NewServer(h) // a loopback listener, served as if it were not
	defer hs.Close()

	withHeader := map[string]string{adminHeader: adminHeaderValue}
	for _, r := range []adminReq{
		{"any Host", "GET", "/v1/config", "keygate.keygate.svc:9901", nil, 200, "0.0.0.0:9901"},
		{"POST with the header", "POST", "/v1/purge", "10.1.2.3:9901", withHeader, 204, ""},
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
