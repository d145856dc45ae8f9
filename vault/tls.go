package vault

import (
	"fmt"
	"io"
	"net/http"
	"os"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/field"
)

// newClient builds the vault/api client for cfg: one attempt per request,
// cfg's address, namespace and TLS files (the VAULT_* environment fills
// only the TLS settings cfg leaves empty), and no token yet.
func newClient(cfg Config) (*vaultapi.Client, error) {
	vc := vaultapi.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault: client configuration from the environment: %w", vc.Error)
	}
	vc.Address = cfg.Addr
	vc.AgentAddress = "" // VAULT_AGENT_ADDR would silently replace Addr
	vc.Timeout = cfg.Timeout
	vc.MaxRetries = 0
	if err := configureTLS(vc, cfg); err != nil {
		return nil, err
	}
	vc.HttpClient.Transport = capErrorBodies{next: vc.HttpClient.Transport}
	client, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	client.SetToken("")     // ignore VAULT_TOKEN
	client.ClearNamespace() // ignore VAULT_NAMESPACE
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
}

// capErrorBodies bounds the body of every answer with status 400 or more:
// vault/api reads such a body whole into memory before keygate sees the
// answer, so a proxy or a broken Vault sending an endless error page would
// otherwise take as much memory as arrives before the request's timeout.
// Vault's own error bodies are small JSON; the largest is a KV 404 of a
// deleted entry, which carries the entry's metadata: maxBody fits it.
// (Installed before vaultapi.NewClient, which, like ConfigureTLS, needs an
// *http.Transport only for unix:// addresses, which Validate refuses.)
type capErrorBodies struct{ next http.RoundTripper }

func (c capErrorBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode >= 400 {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxBody}
	}
	return resp, err
}

// errErrorBodyTooLarge: an error answer's body is over maxBody.
var errErrorBodyTooLarge = fmt.Errorf("the error response is over %d bytes", maxBody)

// cappedBody reads at most left more bytes; a byte past them is
// errErrorBodyTooLarge (a body of exactly the cap ends as it does).
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, err := c.ReadCloser.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, errErrorBodyTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

// configureTLS applies cfg's TLS files; a file that cannot be read or
// parsed is a *field.Error naming its field as Validate does.
func configureTLS(vc *vaultapi.Config, cfg Config) error {
	if cfg.CACert == "" && cfg.ClientCert == "" {
		return nil
	}
	for _, f := range []struct{ field, path string }{
		{"vault-ca-cert", cfg.CACert}, {"vault-client-cert", cfg.ClientCert}, {"vault-client-key", cfg.ClientKey},
	} {
		if _, err := os.Stat(f.path); f.path != "" && err != nil {
			return &field.Error{Names: []string{f.field}, Problem: err.Error()}
		}
	}
	tc := &vaultapi.TLSConfig{CACert: cfg.CACert, ClientCert: cfg.ClientCert, ClientKey: cfg.ClientKey}
	if err := vc.ConfigureTLS(tc); err != nil {
		name := "vault-ca-cert"
		if cfg.ClientCert != "" {
			name = "vault-client-cert"
		}
		return &field.Error{Names: []string{name}, Problem: "TLS: " + err.Error()}
	}
	return nil
}
