package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var httpServingRE = regexp.MustCompile(`"msg":"serving HTTP authorization","http_addr":"([^"]+)"`)

// httpAddr waits for s to log its HTTP listener.
func (s *server) httpAddr(t *testing.T) string {
	t.Helper()
	var addr string
	eventually(t, 10*time.Second, "HTTP listener logged", func() bool {
		m := httpServingRE.FindStringSubmatch(s.logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return "http://" + addr
}

func httpGet(t *testing.T, url string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestServeHTTPMode: `serve --http-addr` answers the HTTP authorization
// mode beside gRPC, with /healthz following gRPC health.
func TestServeHTTPMode(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme", "--scopes", "orders:read"))
	s := serve(t, env, ring.all, "--http-addr", "127.0.0.1:0")
	base := s.httpAddr(t)

	if r := httpGet(t, base+"/healthz", nil); r.StatusCode != 200 {
		t.Errorf("/healthz: %d", r.StatusCode)
	}
	r := httpGet(t, base+"/ext_authz/v1/orders", map[string]string{"Authorization": "Bearer " + k.Key})
	if r.StatusCode != 200 || r.Header.Get("X-Keygate-Key-Id") != k.ID || r.Header.Get("X-Envoy-Auth-Headers-To-Remove") != "authorization,x-keygate-reason" {
		t.Errorf("envoy mode allow: %d %v", r.StatusCode, r.Header)
	}
	r = httpGet(t, base+"/auth", map[string]string{"X-Api-Key": k.Key, "X-Forwarded-Uri": "/v1/orders", "X-Forwarded-Method": "GET"})
	if r.StatusCode != 200 || r.Header.Get("X-Keygate-Tenant") != "acme" {
		t.Errorf("forward-auth allow: %d %v", r.StatusCode, r.Header)
	}
	r = httpGet(t, base+"/auth", map[string]string{"X-Api-Key": strings.Replace(k.Key, k.ID, "AAAAAAAAAAAA", 1),
		"X-Forwarded-Uri": "/v1/orders", "X-Forwarded-Method": "GET"})
	if r.StatusCode != 401 || r.Header.Get("X-Keygate-Reason") != "malformed_key" {
		t.Errorf("bad key: %d %q", r.StatusCode, r.Header.Get("X-Keygate-Reason"))
	}
	o := s.decide(t, k.Key, checkFlags{}) // gRPC still serves
	if o.status != 200 {
		t.Errorf("gRPC beside HTTP: %v", o)
	}
}
