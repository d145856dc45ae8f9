package vaulttest

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// get GETs Vault's health over the TLS listener with tc.
func get(addr string, tc *tls.Config) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(addr + "/v1/sys/health")
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func TestTLSServer(t *testing.T) {
	var v *TLSVault
	t.Run("mtls", func(t *testing.T) {
		v = TLSServer(t, TLSOptions{RequireClientCert: true})
		if !strings.HasPrefix(v.Addr, "https://127.0.0.1:") || v.Token == "" || v.ClientCertFile == "" || v.ClientKeyFile == "" {
			t.Fatalf("TLSServer = %+v", v)
		}
		tc, err := v.clientTLS()
		if err != nil {
			t.Fatal(err)
		}
		if err := get(v.Addr, tc); err != nil {
			t.Errorf("with CA and client certificate: %v", err)
		}
		noCert := tc.Clone()
		noCert.Certificates = nil
		if err := get(v.Addr, noCert); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("without a client certificate: %v, want the handshake refused", err)
		}
		if err := get(v.Addr, &tls.Config{Certificates: tc.Certificates}); err == nil || !strings.Contains(err.Error(), "unknown authority") {
			t.Errorf("with system roots: %v, want Vault's certificate rejected", err)
		}
	})
	if v == nil {
		t.SkipNow() // the subtest skipped: no Vault binary
	}
	// The subtest's cleanup has run: Vault is gone and so are its files.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(v.Addr, "https://"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test ended", v.Addr)
	}
	if _, err := os.Stat(v.CAFile); !os.IsNotExist(err) {
		t.Errorf("%s after the test ended: %v, want it removed", v.CAFile, err)
	}
}

func TestTLSServerWithoutClientCert(t *testing.T) {
	v := TLSServer(t, TLSOptions{})
	if v.ClientCertFile != "" || v.ClientKeyFile != "" || v.ClientCAFile != "" {
		t.Errorf("client certificate files without RequireClientCert: %+v", v)
	}
	tc, err := v.clientTLS()
	if err != nil {
		t.Fatal(err)
	}
	if err := get(v.Addr, tc); err != nil {
		t.Errorf("with the CA, no client certificate: %v", err)
	}
}

func TestTLSServerMissingBinary(t *testing.T) {
	t.Setenv("KEYGATE_VAULT_BIN", t.TempDir()+"/no-vault")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		var wg sync.WaitGroup
		wg.Go(func() { TLSServer(r, TLSOptions{RequireClientCert: true}) })
		wg.Wait()
		if ci == "" && r.skipped == "" || ci != "" && r.failed == "" {
			t.Errorf("CI=%q: skipped %q, failed %q", ci, r.skipped, r.failed)
		}
	}
}
