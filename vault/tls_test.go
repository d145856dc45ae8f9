package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

// selfSigned writes a self-signed client certificate and key as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keygate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A TLS peer that requires a client certificate: with CACert, ClientCert
// and ClientKey the Store gets through (a KV 404 is "not found"); without
// the client certificate the handshake fails.
func TestTLSClientCert(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, clientCert := selfSigned(t, dir)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[]}`))
	}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw)

	id, _ := newRecord(t)
	cfg := DefaultConfig()
	cfg.Addr, cfg.Token = srv.URL, "hvs.test"
	cfg.CACert, cfg.ClientCert, cfg.ClientKey = caFile, certFile, keyFile
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(context.Background(), id); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("lookup over mutual TLS = %v, want not found", err)
	}
	cfg.ClientCert, cfg.ClientKey = "", ""
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if _, err := s.Lookup(context.Background(), id); !errors.As(err, &e) || e.Class() != ClassUnreachable {
		t.Errorf("lookup without the client certificate = %v, want unreachable", err)
	}
}

func TestTLSBadFiles(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	for name, files := range map[string][3]string{
		"vault-ca-cert":     {"/nonexistent/ca.pem", "", ""},
		"vault-client-key":  {"", bad, "/nonexistent/key.pem"},
		"vault-client-cert": {"", bad, bad},
	} {
		cfg := DefaultConfig()
		cfg.Addr, cfg.Token = "https://127.0.0.1:1", "hvs.x"
		cfg.CACert, cfg.ClientCert, cfg.ClientKey = files[0], files[1], files[2]
		_, err := New(cfg)
		var fe *field.Error
		if !errors.As(err, &fe) || !slices.Equal(fe.Names, []string{name}) {
			t.Errorf("New(%s) = %v, want a *field.Error naming %s", name, err, name)
		}
	}
}
