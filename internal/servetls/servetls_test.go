package servetls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/internal/testpki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type files struct{ cert, key, ca string }

func writeFiles(t *testing.T) (files, *testpki.CA) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	f := files{filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")}
	issue(t, ca, f)
	if err := ca.WriteCert(f.ca); err != nil {
		t.Fatal(err)
	}
	return f, ca
}

func issue(t *testing.T, ca *testpki.CA, f files) {
	t.Helper()
	if err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "keygate"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, f.cert, f.key); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []string
	}{
		{Config{CertFile: "c", Reload: time.Second}, []string{"tls-cert and tls-key: give both"}},
		{Config{ClientCAFile: "ca", Reload: time.Second}, []string{"need --tls-cert"}},
		{Config{CertFile: "c", KeyFile: "k", AllowedPeers: []string{"spiffe://x"}, Reload: time.Second}, []string{"needs --tls-client-ca"}},
		{Config{CertFile: "c", KeyFile: "k", ClientCAFile: "ca", AllowedPeers: []string{"*", "a*b*", ""}, Reload: time.Second},
			[]string{`[0]: "*"`, `[1]: "a*b*"`, `[2]: ""`}},
		{Config{Reload: -time.Second}, []string{"tls-reload"}},
		{Config{}, []string{"tls-reload"}},
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v, want %q", tt.cfg, err, w)
			}
		}
	}
}

func TestNewBadFiles(t *testing.T) {
	f, _ := writeFiles(t)
	log := slog.New(slog.DiscardHandler)
	for name, cfg := range map[string]Config{
		"missing cert": {CertFile: f.cert + "x", KeyFile: f.key},
		"key mismatch": {CertFile: f.cert, KeyFile: f.ca},
		"missing CA":   {CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca + "x"},
		"CA not PEM":   {CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.key},
	} {
		cfg.Reload = time.Second
		if _, err := New(cfg, log); err == nil {
			t.Errorf("%s: loaded", name)
		} else if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error quotes key material: %v", name, err)
		}
	}
}

// TestReloadKeepsLastGood: a changed pair loads; a broken file keeps the
// current material; the allowlist matches exact and prefix SANs.
func TestReloadKeepsLastGood(t *testing.T) {
	f, ca := writeFiles(t)
	r, err := New(Config{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, Reload: 20 * time.Millisecond,
		AllowedPeers: []string{"spiffe://td/ns/a/sa/*", "envoy.example.com"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	first := r.cur.Load().cert.Leaf.SerialNumber

	if err := os.WriteFile(f.key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if r.cur.Load().cert.Leaf.SerialNumber.Cmp(first) != 0 || r.Loads() != 1 {
		t.Fatal("a broken key file replaced the certificate")
	}
	issue(t, ca, f)
	deadline := time.Now().Add(5 * time.Second)
	for r.Loads() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.cur.Load().cert.Leaf.SerialNumber.Cmp(first) == 0 {
		t.Fatal("the new certificate was not loaded")
	}

	for name, want := range map[string]bool{"spiffe://td/ns/a/sa/gw": true, "spiffe://td/ns/b/sa/gw": false,
		"envoy.example.com": true, "x.envoy.example.com": false} {
		leaf := &x509.Certificate{}
		if u, err := url.Parse(name); err == nil && u.Scheme != "" {
			leaf.URIs = []*url.URL{u}
		} else {
			leaf.DNSNames = []string{name}
		}
		err := r.verifyPeer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}})
		if (err == nil) != want {
			t.Errorf("%s: %v, want allowed %v", name, err, want)
		}
	}
}
