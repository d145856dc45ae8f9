package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keygate/keygate/internal/testpki"
)

// pki is the CAs and files of one mutual-TLS test.
type pki struct {
	dir              string
	ca, ca2          *testpki.CA
	serverCert, key  string
	clientCA         string
	roots            *x509.CertPool // trusts ca and ca2
	caFile, ca2File  string
	gateway, outside tls.Certificate // allowed and not-allowed SPIFFE ids, from ca
}

const gatewayID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	if p.ca, err = testpki.NewCA("keygate test CA"); err != nil {
		t.Fatal(err)
	}
	if p.ca2, err = testpki.NewCA("keygate test CA 2"); err != nil {
		t.Fatal(err)
	}
	p.serverCert, p.key = p.file("server.pem"), p.file("server-key.pem")
	p.clientCA, p.caFile, p.ca2File = p.file("client-ca.pem"), p.file("ca.pem"), p.file("ca2.pem")
	must(t, p.ca.WriteCert(p.caFile), p.ca2.WriteCert(p.ca2File), p.ca.WriteCert(p.clientCA))
	p.issueServer(t, p.ca)
	p.gateway = p.client(t, p.ca, gatewayID)
	p.outside = p.client(t, p.ca, "spiffe://cluster.local/ns/default/sa/curious")
	p.roots = x509.NewCertPool()
	for _, f := range []string{p.caFile, p.ca2File} {
		pem, err := os.ReadFile(f)
		if err != nil || !p.roots.AppendCertsFromPEM(pem) {
			t.Fatalf("CA %s: %v", f, err)
		}
	}
	return p
}

func (p *pki) file(name string) string { return filepath.Join(p.dir, name) }

func must(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// issueServer (re)writes keygate's certificate for 127.0.0.1, from ca.
func (p *pki) issueServer(t *testing.T, ca *testpki.CA) {
	t.Helper()
	must(t, ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "keygate"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, p.serverCert, p.key))
}

// client issues a client certificate with a SPIFFE URI SAN.
func (p *pki) client(t *testing.T, ca *testpki.CA, id string) tls.Certificate {
	t.Helper()
	u, _ := url.Parse(id)
	cf, kf := p.file("client.pem"), p.file("client-key.pem")
	must(t, ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "envoy"}, URIs: []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, cf, kf))
	c, err := tls.LoadX509KeyPair(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *pki) clientTLS(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: p.roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// dialTLS points s's client at its gRPC port over TLS.
func (s *server) dialTLS(t *testing.T, c *tls.Config) {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(c)))
	if err != nil {
		t.Fatal(err)
	}
	s.conn.Close()
	s.conn, s.client = conn, authv3.NewAuthorizationClient(conn)
}

// checkOnce makes one Check on a new connection with c; nil on allow.
func checkOnce(addr string, c credentials.TransportCredentials, rawKey string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(c))
	if err != nil {
		return err
	}
	defer conn.Close()
	f := checkFlags{method: "GET", path: "/orders", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: rawKey}
	req, err := f.request(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err == nil && resp.GetStatus().GetCode() != 0 {
		return os.ErrPermission
	}
	return err
}

// TestMutualTLS: only callers with a certificate from the client CA and an
// allowed SPIFFE id get answers, on gRPC and HTTP; plain text is refused.
func TestMutualTLS(t *testing.T) {
	var ring keyring
	p := newPKI(t)
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme"))
	s := startServe(t, env, ring.all, "--tls-cert", p.serverCert, "--tls-key", p.key, "--tls-client-ca", p.clientCA,
		"--tls-allowed-peers", "spiffe://cluster.local/ns/istio-system/sa/*", "--http-addr", "127.0.0.1:0", "--tls-reload", "100ms")
	s.dialTLS(t, p.clientTLS(&p.gateway))
	s.waitServing(t)
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("allowed peer: %v", o)
	}
	if err := checkOnce(s.addr, credentials.NewTLS(p.clientTLS(&p.gateway)), k.Key); err != nil {
		t.Fatalf("allowed peer on a new connection: %v", err) // the refusals below are not about the request
	}
	for name, c := range map[string]credentials.TransportCredentials{
		"no client certificate":   credentials.NewTLS(p.clientTLS(nil)),
		"SPIFFE id not allowed":   credentials.NewTLS(p.clientTLS(&p.outside)),
		"plain text":              insecure.NewCredentials(),
		"server cert not trusted": credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool(), Certificates: []tls.Certificate{p.gateway}}),
	} {
		if err := checkOnce(s.addr, c, k.Key); err == nil {
			t.Errorf("%s: Check answered", name)
		}
	}
	clientCert, clientKey := p.file("gw.pem"), p.file("gw-key.pem")
	u, _ := url.Parse(gatewayID)
	must(t, p.ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "cli"}, URIs: []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, clientCert, clientKey))
	if out := mustCLI(t, env, "check", "--addr", s.addr, "--key", k.Key, "--tls-ca", p.caFile, "--tls-cert", clientCert, "--tls-key", clientKey); !strings.HasPrefix(out, "ALLOW") {
		t.Errorf("keygate check over mutual TLS:\n%s", out)
	}
	if _, _, err := cli(t, env, "check", "--addr", s.addr, "--key", k.Key); err == nil {
		t.Error("keygate check in plain text against a TLS server succeeded")
	}
	base := "https://" + s.httpAddr(t)[len("http://"):]
	for name, c := range map[string]*tls.Config{"allowed": p.clientTLS(&p.gateway), "no cert": p.clientTLS(nil), "not allowed": p.clientTLS(&p.outside)} {
		hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
		resp, err := hc.Get(base + "/healthz")
		if ok := err == nil && resp.StatusCode == 200; ok != (name == "allowed") {
			t.Errorf("HTTP over TLS, %s: %v %v", name, resp, err)
		}
		if err == nil {
			resp.Body.Close()
		}
	}
	rotateUnderLoad(t, s, p, k.Key)
}

// rotateUnderLoad re-issues keygate's certificate, then moves to a new CA
// for both sides, while Checks run on a long-lived connection and on new
// ones: not one may fail.
func rotateUnderLoad(t *testing.T, s *server, p *pki, rawKey string) {
	t.Helper()
	var failures, checks atomic.Int64
	cert := atomic.Pointer[tls.Certificate]{}
	cert.Store(&p.gateway)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // long-lived connection
		for i := 0; i < 3000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			checks.Add(1)
			if o := s.decideQuiet(rawKey); o != 200 {
				failures.Add(1)
			}
		}
	})
	wg.Go(func() { // a new handshake each time
		for i := 0; i < 300; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			checks.Add(1)
			if err := checkOnce(s.addr, credentials.NewTLS(p.clientTLS(cert.Load())), rawKey); err != nil {
				failures.Add(1)
				t.Logf("new connection: %v", err)
			}
		}
	})
	loaded := func(n int) func() bool {
		return func() bool { return countLogs(s, "TLS certificate reloaded") >= n }
	}
	time.Sleep(200 * time.Millisecond)
	p.issueServer(t, p.ca) // 1: a new certificate from the same CA
	eventually(t, 5*time.Second, "server certificate reloaded", loaded(1))
	must(t, os.WriteFile(p.clientCA, append(mustRead(t, p.caFile), mustRead(t, p.ca2File)...), 0o600))
	eventually(t, 5*time.Second, "client CA bundle reloaded", loaded(2)) // 2: trust both CAs
	next := p.client(t, p.ca2, gatewayID)
	cert.Store(&next)       // callers move to the new CA
	p.issueServer(t, p.ca2) // 3: keygate too
	eventually(t, 5*time.Second, "certificate from the new CA loaded", loaded(3))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 || checks.Load() < 50 {
		t.Errorf("%d of %d Checks failed while certificates rotated", n, checks.Load())
	}
	t.Logf("certificate rotation: %d Checks, %d failures", checks.Load(), failures.Load())
	onlyNew := x509.NewCertPool()
	onlyNew.AppendCertsFromPEM(mustRead(t, p.ca2File))
	if err := checkOnce(s.addr, credentials.NewTLS(&tls.Config{RootCAs: onlyNew, Certificates: []tls.Certificate{*cert.Load()}}), rawKey); err != nil {
		t.Errorf("after rotation, keygate does not present the new CA's certificate: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countLogs(s *server, msg string) int {
	return strings.Count(s.logs.String(), `"msg":"`+msg+`"`)
}

// decideQuiet is decide for goroutines: the HTTP status, or 0 on an error.
func (s *server) decideQuiet(rawKey string) int {
	f := checkFlags{method: "GET", path: "/orders", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: rawKey}
	req, err := f.request(nil)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := s.client.Check(ctx, req)
	if err != nil {
		return 0
	}
	return toOutcome(resp).status
}
