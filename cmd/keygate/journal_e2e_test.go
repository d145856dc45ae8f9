package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// TestJournalReadableLate: keygate serve's token may read keys and pepper
// but not the change journal at first (as after a policy mistake, or while
// the journal read keeps failing), so Checks fill the cache before the
// first successful journal read. A key cached then and revoked with the CLI
// (which journals the revocation) must be denied within a few polls of the
// journal becoming readable, not after --found-ttl: the first successful
// read expires whatever was cached before it.
func TestJournalReadableLate(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	base := env["KEYGATE_VAULT_BASE_PATH"]
	client := vaulttest.Server(t).Client(t)
	policy := "late-journal-" + base
	putPolicy := func(paths ...string) {
		t.Helper()
		var rules strings.Builder
		for _, p := range paths {
			fmt.Fprintf(&rules, "path \"secret/%s\" { capabilities = [\"read\"] }\n", p)
		}
		if err := client.Sys().PutPolicy(policy, rules.String()); err != nil {
			t.Fatalf("put policy: %v", err)
		}
	}
	readKeys := []string{"data/" + base + "/keys/*", "data/" + base + "/pepper"}
	putPolicy(readKeys...)
	sec, err := client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "1h"})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("create keygate's token: %v", err)
	}
	serverEnv := envMap{"VAULT_ADDR": env["VAULT_ADDR"], "VAULT_TOKEN": sec.Auth.ClientToken, "KEYGATE_VAULT_BASE_PATH": base}

	k := ring.add(createKey(t, env, "--tenant", "acme"))
	const foundTTL = time.Minute
	s := serve(t, serverEnv, ring.all, "--found-ttl", foundTTL.String(), "--journal-poll", "200ms", "--usage-interval", "0")
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("before revoke: %v", o)
	}
	mustCLI(t, env, "keys", "revoke", k.ID)
	eventually(t, 10*time.Second, "a failed journal read after the revocation", func() bool {
		return strings.Count(s.logs.String(), "cannot read the change journal") >= 2
	})
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("revoked while the journal is unreadable: %v, want the cached allow (the test needs it cached)", o)
	}

	putPolicy(append(readKeys, "data/"+base+"/journal", "metadata/"+base+"/journal")...)
	took := eventually(t, 10*time.Second, "the revoked key denied once the journal is readable (found-ttl 1m)", func() bool {
		return s.decide(t, k.Key, checkFlags{}).reason == "revoked_key"
	})
	t.Logf("revocation applied %s after the journal became readable (journal-poll 200ms, found-ttl %s)",
		took.Round(10*time.Millisecond), foundTTL)
}
