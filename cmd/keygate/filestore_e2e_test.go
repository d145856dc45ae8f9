package main

import (
	"testing"
	"time"
)

// TestFileStoreEvicts: serve on a file store with --found-ttl 1m. A cached
// key revoked, and another deleted, by the CLI (another writer of the file,
// so the server learns of it by re-reading the file) are denied within a
// few seconds, not after found-ttl; an untouched key stays cached.
func TestFileStoreEvicts(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	revoked := ring.add(createKey(t, env, "--tenant", "acme"))
	deleted := ring.add(createKey(t, env, "--tenant", "acme"))
	kept := ring.add(createKey(t, env, "--tenant", "acme"))
	const foundTTL = time.Minute
	s := serve(t, env, ring.all, "--found-ttl", foundTTL.String())
	for _, k := range []created{revoked, deleted, kept} {
		if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
			t.Fatalf("before the changes: %v", o)
		}
	}

	mustCLI(t, env, "keys", "revoke", revoked.ID)
	took := eventually(t, 10*time.Second, "the revoked key denied (found-ttl 1m)", func() bool {
		return s.decide(t, revoked.Key, checkFlags{}).reason == "revoked_key"
	})
	t.Logf("revocation applied after %s", took.Round(10*time.Millisecond))

	mustCLI(t, env, "keys", "delete", deleted.ID, "--force")
	took = eventually(t, 10*time.Second, "the deleted key denied (found-ttl 1m)", func() bool {
		return s.decide(t, deleted.Key, checkFlags{}).reason == "unknown_key"
	})
	t.Logf("deletion applied after %s", took.Round(10*time.Millisecond))

	if o := s.decide(t, kept.Key, checkFlags{}); o.status != 200 {
		t.Errorf("untouched key: %v, want allowed", o)
	}
}
