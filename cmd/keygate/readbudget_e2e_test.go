package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// waitJournalRead waits for serve's first successful journal read (logged
// at debug): a key cached before it is re-read once, as the read expires
// the cache.
func (s *server) waitJournalRead(t *testing.T) {
	t.Helper()
	eventually(t, 10*time.Second, "the first journal read", func() bool {
		return strings.Contains(s.logs.String(), "change journal read first")
	})
}

// TestRecordsFreshWhileJournalRead: with the change journal read every
// second and --found-ttl 1s, cached keys under steady Checks are not
// re-read from Vault (counted by Vault's audit device) for seconds: the
// journal vouches for them. `keys revoke` still applies within a couple of
// polls. When keygate's token can no longer read the journal (a policy
// change), cached keys are re-read every --found-ttl again; once it can,
// they are not.
func TestRecordsFreshWhileJournalRead(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	base := env["KEYGATE_VAULT_BASE_PATH"]
	client := vaulttest.Server(t).Client(t)
	reads := auditReads(t)
	policy := "fresh-journal-" + base
	putPolicy := func(journal bool) {
		t.Helper()
		paths := []string{"data/" + base + "/keys/*", "data/" + base + "/pepper"}
		if journal {
			paths = append(paths, "data/"+base+"/journal")
		}
		var rules strings.Builder
		for _, p := range paths {
			fmt.Fprintf(&rules, "path \"secret/%s\" { capabilities = [\"read\"] }\n", p)
		}
		if err := client.Sys().PutPolicy(policy, rules.String()); err != nil {
			t.Fatalf("put policy: %v", err)
		}
	}
	putPolicy(true)
	sec, err := client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "1h"})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("create keygate's token: %v", err)
	}
	serverEnv := envMap{"VAULT_ADDR": env["VAULT_ADDR"], "VAULT_TOKEN": sec.Auth.ClientToken, "KEYGATE_VAULT_BASE_PATH": base}
	s := serve(t, serverEnv, ring.all, "--found-ttl", "1s", "--usage-interval", "0")
	s.waitJournalRead(t)
	k, kept := ring.add(createKey(t, env, "--tenant", "acme")), ring.add(createKey(t, env, "--tenant", "acme"))
	keyReads := func() int { return reads(base+"/keys/"+k.ID) + reads(base+"/keys/"+kept.ID) }
	steady := func(d time.Duration, keys ...created) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, c := range keys {
				if o := s.decide(t, c.Key, checkFlags{}); o.status != 200 {
					t.Fatalf("steady Checks: %v", o)
				}
			}
		}
	}

	steady(4*time.Second, k, kept)
	if n := keyReads(); n != 2 {
		t.Errorf("2 keys under steady Checks for 4s (found-ttl 1s, journal read): %d Vault reads, want 2 (one each)", n)
	}
	mustCLI(t, env, "keys", "revoke", k.ID)
	took := eventually(t, 3*time.Second, "the revocation applied (journal-poll 1s)", func() bool {
		return s.decide(t, k.Key, checkFlags{}).reason == "revoked_key"
	})
	t.Logf("healthy journal: 0 re-reads in 4s; revocation applied %s after keys revoke returned", took.Round(10*time.Millisecond))

	putPolicy(false)
	eventually(t, 10*time.Second, "a failed journal read", func() bool {
		return strings.Contains(s.logs.String(), "cannot read the change journal")
	})
	time.Sleep(3 * time.Second) // the journal's last good read is 3 polls old
	before := reads(base + "/keys/" + kept.ID)
	steady(4*time.Second, kept)
	fallback := reads(base+"/keys/"+kept.ID) - before
	if fallback < 2 {
		t.Errorf("journal unreadable: %d re-reads of a key Checked every 100ms for 4s, want about 4 (found-ttl 1s)", fallback)
	}

	putPolicy(true)
	time.Sleep(2500 * time.Millisecond) // a journal read succeeds within a poll
	before = reads(base + "/keys/" + kept.ID)
	steady(3*time.Second, kept)
	if n := reads(base+"/keys/"+kept.ID) - before; n != 0 {
		t.Errorf("journal readable again: %d re-reads in 3s, want 0", n)
	}
	t.Logf("journal unreadable: %d re-reads in 4s (found-ttl 1s); readable again: none", fallback)
}
