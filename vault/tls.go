package vault

import (
	"fmt"
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
