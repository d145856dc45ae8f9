package vaulttest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testpki"
)

// TLSOptions configures TLSServer.
type TLSOptions struct {
	// RequireClientCert makes Vault's TLS listener require and verify a
	// client certificate (tls_require_and_verify_client_cert) signed by a
	// client CA of its own, and issues one. Default false: server TLS only.
	RequireClientCert bool
}

// TLSVault is a Vault dev server of one test's own with a TLS listener on
// loopback. KV v2 is mounted at "secret/". All files are in the test's
// temp dir.
type TLSVault struct {
	Addr           string // https://127.0.0.1:PORT, the TLS listener
	Token          string // root token
	CAFile         string // PEM CA that signed Vault's certificate (IP SAN 127.0.0.1)
	ClientCAFile   string // PEM CA Vault checks client certificates with; "" unless RequireClientCert
	ClientCertFile string // PEM client certificate signed by ClientCAFile; "" unless RequireClientCert
	ClientKeyFile  string // PEM key of ClientCertFile

	serverCert, serverKey string
	// dev is the dev server. Its own plain-HTTP loopback listener (dev
	// mode always has one) is used only to see that Vault has started.
	dev *Vault
}

// TLSServer starts a Vault dev server for t alone (not the shared one),
// with a TLS listener configured by a -config file that dev mode merges
// with its own listener. The certificates come from throwaway CAs. Vault
// is killed and its files removed when t ends. Like Server, it skips t
// without a Vault binary, or fails it when $CI is set.
func TLSServer(t testing.TB, opts TLSOptions) *TLSVault {
	t.Helper()
	bin := requireBinary(t)
	dir := t.TempDir()
	token := make([]byte, 16)
	rand.Read(token)
	v := &TLSVault{Token: "root-" + hex.EncodeToString(token)}
	if err := v.writePKI(dir, opts.RequireClientCert); err != nil {
		t.Fatalf("vaulttest: TLS certificates: %v", err)
	}
	v.dev = &Vault{Token: v.Token, bin: bin, dir: dir}
	t.Cleanup(v.dev.Kill) // before t.TempDir's removal: cleanups run last-in first-out
	if err := v.start(); err != nil {
		t.Fatalf("vaulttest: TLS server: %v", err)
	}
	return v
}

// writePKI writes a CA and Vault's certificate for 127.0.0.1 and, with
// clientCA, a second CA and a client certificate it signed.
func (v *TLSVault) writePKI(dir string, clientCA bool) error {
	ca, err := testpki.NewCA("keygate vaulttest CA")
	if err != nil {
		return err
	}
	v.CAFile = filepath.Join(dir, "ca.pem")
	v.serverCert, v.serverKey = filepath.Join(dir, "vault.pem"), filepath.Join(dir, "vault-key.pem")
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := errors.Join(ca.WriteCert(v.CAFile), ca.Issue(server, v.serverCert, v.serverKey)); err != nil || !clientCA {
		return err
	}
	cca, err := testpki.NewCA("keygate vaulttest client CA")
	if err != nil {
		return err
	}
	v.ClientCAFile = filepath.Join(dir, "client-ca.pem")
	v.ClientCertFile, v.ClientKeyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "keygate"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return errors.Join(cca.WriteCert(v.ClientCAFile), cca.Issue(client, v.ClientCertFile, v.ClientKeyFile))
}

// start launches Vault on free ports, trying new ones if one is taken
// between choosing and binding it, and waits for the TLS listener.
func (v *TLSVault) start() error {
	for attempt := 0; ; attempt++ {
		err := v.launch()
		if err == nil {
			return v.waitTLS()
		}
		if attempt == 4 || !errors.Is(err, errPortTaken) {
			return err
		}
	}
}

// launch writes the listener config for new ports and starts the dev
// server with it.
func (v *TLSVault) launch() error {
	var ports [3]string // dev listener, TLS listener, TLS listener's cluster address
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	conf := filepath.Join(v.dev.dir, "tls-listener.hcl")
	if err := os.WriteFile(conf, []byte(v.listenerHCL(ports[1], ports[2])), 0o600); err != nil {
		return err
	}
	v.Addr = "https://127.0.0.1:" + ports[1]
	v.dev.port, v.dev.Addr = ports[0], "http://127.0.0.1:"+ports[0]
	v.dev.extra = []string{"-config=" + conf}
	return v.dev.launch()
}

// listenerHCL is the TLS listener's configuration. The cluster address is
// set so Vault does not bind port+1 of the listener, which may be taken.
func (v *TLSVault) listenerHCL(port, clusterPort string) string {
	hcl := fmt.Sprintf("listener \"tcp\" {\n  address = %q\n  cluster_address = %q\n  tls_cert_file = %q\n  tls_key_file = %q\n",
		"127.0.0.1:"+port, "127.0.0.1:"+clusterPort, v.serverCert, v.serverKey)
	if v.ClientCAFile != "" {
		hcl += fmt.Sprintf("  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = %q\n", v.ClientCAFile)
	}
	return hcl + "}\n"
}

// waitTLS polls health and a KV read over the TLS listener, verifying
// Vault's certificate with CAFile and presenting the client certificate.
func (v *TLSVault) waitTLS() error {
	tc, err := v.clientTLS()
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	probe := &Vault{Addr: v.Addr, Token: v.Token}
	for {
		err := probe.probe(ctx, client)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			logPath := filepath.Join(v.dev.dir, "vault.log")
			return fmt.Errorf("TLS listener %s not ready after %v: %w\n---- %s (last lines) ----\n%s",
				v.Addr, startTimeout, err, logPath, logTail(logPath, 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clientTLS is a client TLS configuration that trusts CAFile and presents
// the client certificate, if there is one.
func (v *TLSVault) clientTLS() (*tls.Config, error) {
	caPEM, err := os.ReadFile(v.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no PEM certificate", v.CAFile)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if v.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(v.ClientCertFile, v.ClientKeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
