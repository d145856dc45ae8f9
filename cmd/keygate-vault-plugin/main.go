// Command keygate-vault-plugin is keygate's Vault secrets engine (package
// vaultplugin) as a Vault plugin binary. Vault starts it; it is not run by
// hand. See docs/vault-plugin.md: build with `make plugin`, register with
// `vault plugin register -sha256=… secret keygate-vault-plugin`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/keygate/keygate/vaultplugin"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "keygate-vault-plugin: %v\n", err)
		os.Exit(2)
	}
	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: vaultplugin.Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "keygate-vault-plugin: %v\n", err)
		os.Exit(1)
	}
}
