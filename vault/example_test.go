package vault_test

import (
	"fmt"

	"github.com/keygate/keygate/vault"
)

// Start from DefaultConfig and set what has no default: the address and
// the credentials. Validate names each field at fault; nothing is filled
// in for a zero.
func ExampleDefaultConfig() {
	cfg := vault.DefaultConfig()
	cfg.Addr = "https://vault.example.com:8200"
	cfg.Auth.Method, cfg.Auth.RoleID = vault.AuthAppRole, "keygate"
	cfg.Auth.SecretIDFile = "/run/secrets/keygate-secret-id"
	fmt.Println(cfg.Validate())

	cfg.Auth.AppRoleMount, cfg.Timeout = "", 0
	fmt.Println(cfg.Validate())
	// Output:
	// <nil>
	// vault-approle-mount: required
	// vault-timeout: must be > 0, got 0s
}
