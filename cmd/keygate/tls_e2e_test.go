package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/vaulttest"
)

// TestVaultMutualTLS: `keys create` and `serve` reach a real Vault that
// requires a client certificate, with --vault-ca-cert, --vault-client-cert
// and --vault-client-key. A created key is allowed; a key Vault does not
// have is denied 401, an answer that needs Vault's 404 over mutual TLS (a
// failed handshake would be a 503).
func TestVaultMutualTLS(t *testing.T) {
	for _, k := range []string{"VAULT_CACERT", "VAULT_CAPATH", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY", "VAULT_SKIP_VERIFY"} {
		t.Setenv(k, "") // vault/api would read them for the flags left unset
	}
	var ring keyring
	v := vaulttest.TLSServer(t, vaulttest.TLSOptions{RequireClientCert: true})
	env := envMap{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": v.Token, "KEYGATE_VAULT_BASE_PATH": "kg-mtls"}
	caOnly := []string{"--vault-ca-cert", v.CAFile}
	tlsFlags := slices.Concat(caOnly, []string{"--vault-client-cert", v.ClientCertFile, "--vault-client-key", v.ClientKeyFile})

	_, stderr, err := cli(t, env, append([]string{"keys", "create", "--tenant", "acme"}, caOnly...)...)
	if err == nil || !strings.Contains(err.Error(), "vault") {
		t.Fatalf("keys create without the client certificate: %v, want a Vault error\nstderr: %s", redact(fmt.Sprint(err)), redact(stderr))
	}
	k := ring.add(createKey(t, env, append([]string{"--tenant", "acme"}, tlsFlags...)...))
	unknown := ring.add(createKey(t, envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/k.yaml"}, "--tenant", "acme"))

	s := serve(t, env, ring.all, tlsFlags...)
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 || o.headers["x-keygate-key-id"] != k.ID {
		t.Errorf("key created over mutual TLS: %v (key id header %q), want 200 for %s", o, o.headers["x-keygate-key-id"], k.ID)
	}
	if o := s.decide(t, unknown.Key, checkFlags{}); o.status != 401 || o.reason != "unknown_key" {
		t.Errorf("key Vault does not have: %v, want 401 unknown_key", o)
	}
}
