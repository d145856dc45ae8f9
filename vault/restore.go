package vault

import "fmt"

// RestoreHint says how an operator restores a key Delete soft-deleted:
// KV v2 keeps its versions. It holds no secret.
func (s *Store) RestoreHint(keyID string) string {
	return fmt.Sprintf("Vault keeps its versions: `vault kv metadata get -mount=%[1]s %[2]s/keys/%[3]s` shows the latest, "+
		"`vault kv undelete -mount=%[1]s -versions=<latest> %[2]s/keys/%[3]s` restores it", s.mount, s.base, keyID)
}
