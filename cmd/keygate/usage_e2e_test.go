package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// policyEnv returns env with VAULT_TOKEN replaced by a token holding only
// the shipped policy file name (vault/policies/<name>.hcl), its paths moved
// from the default base path to env's: what the docs tell users to do.
func policyEnv(t *testing.T, env envMap, name string) envMap {
	t.Helper()
	text, err := os.ReadFile("../../vault/policies/" + name + ".hcl")
	if err != nil {
		t.Fatal(err)
	}
	base := env["KEYGATE_VAULT_BASE_PATH"]
	moved := strings.NewReplacer("secret/data/keygate/", "secret/data/"+base+"/",
		"secret/metadata/keygate/", "secret/metadata/"+base+"/").Replace(string(text))
	root := vaulttest.Server(t).Client(t)
	policyName := name + "-" + base
	if err := root.Sys().PutPolicy(policyName, moved); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policyName}, TTL: "15m"})
	if err != nil {
		t.Fatal(err)
	}
	return env.with("VAULT_TOKEN", sec.Auth.ClientToken)
}

// backdate rewrites a key's created_at in Vault (root token), as if it had
// been issued long ago.
func backdate(t *testing.T, env envMap, id string, created time.Time) {
	t.Helper()
	kv := vaulttest.Server(t).Client(t).KVv2("secret")
	path := env["KEYGATE_VAULT_BASE_PATH"] + "/keys/" + id
	sec, err := kv.Get(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	sec.Data["created_at"] = created.UTC().Format(time.RFC3339)
	if _, err := kv.Put(context.Background(), path, sec.Data); err != nil {
		t.Fatal(err)
	}
}

// TestKeyUsage: servers running with the shipped server policy record when
// keys are used, at most once per key per --usage-interval; `keys list
// --unused-for` and `keys audit` (shipped admin policy) find the keys
// nobody uses; a server writes what is pending when it stops.
func TestKeyUsage(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	admin, srvEnv := policyEnv(t, env, "keygate-admin"), policyEnv(t, env, "keygate-server")
	writes := auditLog(t)
	used := ring.add(createKey(t, admin, "--tenant", "acme"))
	idle := ring.add(createKey(t, admin, "--tenant", "acme"))
	const interval = time.Second
	s := serve(t, srvEnv, ring.all, "--usage-interval", interval.String())

	start := time.Now()
	for time.Since(start) < 3500*time.Millisecond { // ~175 Checks, bounded in time
		if o := s.decide(t, used.Key, checkFlags{}); o.status != 200 {
			t.Fatalf("used key: %v", o)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var shown listed
	eventually(t, 3*interval, "last_used recorded", func() bool {
		return jsonUnmarshal(mustCLI(t, admin, "keys", "show", used.ID, "--json"), &shown) == nil && shown.LastUsed != ""
	})
	if at, err := time.Parse(time.RFC3339, shown.LastUsed); err != nil || at.Before(start.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("last_used %q (%v), want a time during the Checks", shown.LastUsed, err)
	}
	n := writes("update", "/usage/"+used.ID) + writes("create", "/usage/"+used.ID)
	if bound := int(elapsed/interval) + 2; n < 1 || n > bound {
		t.Errorf("%d usage writes for one key in %s with --usage-interval %s; want 1..%d", n, elapsed.Round(time.Millisecond), interval, bound)
	}
	t.Logf("one key checked for %s: %d usage writes to Vault (--usage-interval %s)", elapsed.Round(time.Millisecond), n, interval)
	if out := mustCLI(t, admin, "keys", "show", idle.ID); !strings.Contains(out, "last used: never recorded") {
		t.Errorf("idle key shows:\n%s", out)
	}

	long := time.Now().Add(-200 * 24 * time.Hour)
	backdate(t, env, used.ID, long)
	backdate(t, env, idle.ID, long)
	checkUnused(t, admin, idle.ID, used.ID)
	checkUsageUnreadable(t, env, admin, idle.ID)

	// A server stopping writes what it has not written yet.
	late := ring.add(createKey(t, admin, "--tenant", "acme"))
	s2 := serve(t, srvEnv, ring.all, "--usage-interval", "1h")
	if o := s2.decide(t, late.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("late key: %v", o)
	}
	s2.stop(t, ring.all)
	if err := jsonUnmarshal(mustCLI(t, admin, "keys", "show", late.ID, "--json"), &shown); err != nil || shown.LastUsed == "" {
		t.Errorf("use before shutdown not written: %v, %+v", err, shown)
	}
}

// checkUnused: list --unused-for and audit name the idle key, not the used one.
func checkUnused(t *testing.T, admin envMap, idleID, usedID string) {
	t.Helper()
	var rows []listed
	if err := jsonUnmarshal(mustCLI(t, admin, "keys", "list", "--json", "--unused-for", "90d"), &rows); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{idleID}) {
		t.Errorf("keys list --unused-for 90d = %v, want only the idle key %s", ids, idleID)
	}
	if out := mustCLI(t, admin, "keys", "list"); !strings.Contains(out, "LAST USED") {
		t.Errorf("keys list has no LAST USED column:\n%s", out)
	}
	var report []audited
	if err := jsonUnmarshal(mustCLI(t, admin, "keys", "audit", "--json"), &report); err != nil {
		t.Fatal(err)
	}
	unused := map[string]string{}
	for _, a := range report {
		for _, f := range a.Findings {
			if f.Code == "unused" {
				unused[a.ID] = f.Detail
			}
		}
	}
	if len(unused) != 1 || !strings.HasPrefix(unused[idleID], "never used since it was created") {
		t.Errorf("audit unused findings = %v, want the idle key only", unused)
	}
	if out := mustCLI(t, admin, "keys", "audit", "--unused-for", "300d", "--json"); strings.Contains(out, `"unused"`) {
		t.Errorf("audit --unused-for 300d still reports unused: %s", out)
	}
}

// checkUsageUnreadable: a usage entry that does not parse (a leaked server
// token can write one) is reported as such; it neither hides the key's
// other findings nor makes it look used or unused.
func checkUsageUnreadable(t *testing.T, env, admin envMap, id string) {
	t.Helper()
	kv := vaulttest.Server(t).Client(t).KVv2("secret")
	if _, err := kv.Put(context.Background(), env["KEYGATE_VAULT_BASE_PATH"]+"/usage/"+id, map[string]any{"last_used": "x"}); err != nil {
		t.Fatal(err)
	}
	var report []audited
	if err := jsonUnmarshal(mustCLI(t, admin, "keys", "audit", "--json"), &report); err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, a := range report {
		for _, f := range a.Findings {
			if a.ID == id {
				codes[f.Code] = true
			}
		}
	}
	if !codes["usage_unreadable"] || !codes["no_expiry"] || codes["unreadable"] || codes["unused"] {
		t.Errorf("findings for a key with a junk usage entry: %v; want usage_unreadable and no_expiry", codes)
	}
	var rows []listed
	if err := jsonUnmarshal(mustCLI(t, admin, "keys", "list", "--json", "--unused-for", "90d"), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ID != id || rows[0].UsageError == "" || rows[0].Record == nil {
		t.Errorf("list --unused-for with unknown use: %+v; want the key listed with its usage_error", rows)
	}
}

// TestDeleteInvalidRecord: a record keygate cannot read has an unknown
// status, so deleting it needs --force.
func TestDeleteInvalidRecord(t *testing.T) {
	env := vaultEnv(t)
	k := createKey(t, env, "--tenant", "acme")
	kv := vaulttest.Server(t).Client(t).KVv2("secret")
	if _, err := kv.Put(context.Background(), env["KEYGATE_VAULT_BASE_PATH"]+"/keys/"+k.ID, map[string]any{"status": "paused"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, env, "keys", "delete", k.ID); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("delete of an invalid record without --force: %v", err)
	}
	mustCLI(t, env, "keys", "delete", k.ID, "--force")
	if _, _, err := cli(t, env, "keys", "show", k.ID); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show after delete: %v", err)
	}
}

// TestJournalWithShippedPolicies: the change journal works with exactly the
// shipped policy files: the admin CLI appends to it and a server polls it
// (both on the data path, no metadata grant), so a revocation beats a long
// found-TTL.
func TestJournalWithShippedPolicies(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	admin, srvEnv := policyEnv(t, env, "keygate-admin"), policyEnv(t, env, "keygate-server")
	k := ring.add(createKey(t, admin, "--tenant", "acme"))
	s := serve(t, srvEnv, ring.all, "--found-ttl", "1h", "--journal-poll", "100ms")
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("before revoke: %v", o)
	}
	mustCLI(t, admin, "keys", "revoke", k.ID)
	eventually(t, 10*time.Second, "revocation applied through the journal", func() bool {
		return s.decide(t, k.Key, checkFlags{}).reason == "revoked_key"
	})
	if strings.Contains(s.logs.String(), "cannot read the change journal") {
		t.Errorf("the server could not read the journal:\n%s", redact(s.logs.String()))
	}
}
