package vault

import "fmt"

// RestoreHint says how an operator restores a key Delete deleted: KV v2
// keeps its versions, the latest being Delete's soft-deleted marker, so the
// one before it is the record. It holds no secret.
func (s *Store) RestoreHint(keyID string) string {
	return fmt.Sprintf("Vault keeps its versions: `vault kv metadata get -mount=%[1]s %[2]s/keys/%[3]s` lists them (the latest is "+
		"keygate's deletion marker); `vault kv rollback -mount=%[1]s -version=<the one before it> %[2]s/keys/%[3]s` restores the record", s.mount, s.base, keyID)
}
