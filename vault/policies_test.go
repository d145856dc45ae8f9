package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/policy"
)

// The policy files in vault/policies, by Vault policy name. Their paths are
// fixed to the default mount "secret" and base path "keygate", so these
// tests use that base path (with fresh key ids, removed afterwards) rather
// than a random one like the other tests in this package.
const (
	serverPolicy = "keygate-server"
	// pluginServerPolicy is the server's with --vault-engine plugin.
	pluginServerPolicy = "keygate-server-plugin"
	// pluginAdminPolicy is the CLI's and console's with the plugin.
	pluginAdminPolicy = "keygate-admin-plugin"
	// leakPolicy and leakRevokePolicy are keygate leak-endpoint's (the
	// second added for --revoke).
	leakPolicy       = "keygate-leak-endpoint"
	leakRevokePolicy = "keygate-leak-endpoint-revoke"
	adminPolicy      = "keygate-admin"
	journalPath      = "secret/data/keygate/journal"
	journalMeta      = "secret/metadata/keygate/journal"
)

// errDenied in a test table means: Vault must answer 403 permission denied.
var errDenied = errors.New("403 permission denied")

func readPolicyFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("policies", name+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// policyFixture is the shared dev server with both policies written, a
// Store and a raw client for a token holding each, and a root Store on the
// same base path to set things up.
type policyFixture struct {
	vault     *vaulttest.Vault
	root      *vaultapi.Client
	rootStore *Store

	server, admin       *Store
	serverAPI, adminAPI *vaultapi.Client
	serverTok, adminTok string
}

func newPolicyFixture(t *testing.T) *policyFixture {
	t.Helper()
	v := vaulttest.Server(t)
	f := &policyFixture{vault: v, root: v.Client(t)}
	for _, name := range []string{serverPolicy, adminPolicy} {
		check(t, f.root.Sys().PutPolicy(name, readPolicyFile(t, name)))
	}
	f.rootStore = f.store(t, v.Token, DefaultConfig().BasePath)
	f.serverTok = policyToken(t, f.root, serverPolicy)
	f.adminTok = policyToken(t, f.root, adminPolicy)
	f.server, f.serverAPI = f.store(t, f.serverTok, DefaultConfig().BasePath), f.client(t, f.serverTok)
	f.admin, f.adminAPI = f.store(t, f.adminTok, DefaultConfig().BasePath), f.client(t, f.adminTok)
	return f
}

// policyToken creates a child token of root with only the named policy
// (plus Vault's "default", which lets a token look itself up and renew
// itself) and revokes it when the test ends.
func policyToken(t *testing.T, root *vaultapi.Client, policyName string) string {
	t.Helper()
	sec, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{
		Policies:    []string{policyName},
		TTL:         "15m",
		DisplayName: policyName + "-test",
	})
	check(t, err)
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		t.Fatalf("token create for %s: no token in the response", policyName)
	}
	if got := slices.Sorted(slices.Values(sec.Auth.TokenPolicies)); !slices.Equal(got, []string{"default", policyName}) {
		t.Fatalf("token policies = %v, want [default %s]", got, policyName)
	}
	tok := sec.Auth.ClientToken
	t.Cleanup(func() {
		if err := root.Auth().Token().RevokeTree(tok); err != nil {
			t.Errorf("revoking the %s test token: %v", policyName, err)
		}
	})
	return tok
}

func (f *policyFixture) store(t *testing.T, token, base string) *Store {
	t.Helper()
	s, err := New(testConfig(f.vault.Addr, token, base))
	check(t, err)
	return s
}

func (f *policyFixture) client(t *testing.T, token string) *vaultapi.Client {
	t.Helper()
	c := f.vault.Client(t)
	c.SetToken(token)
	return c
}

// newKey returns a fresh key id and record on the fixed base path and
// erases the entry (all versions) when the test ends.
func (f *policyFixture) newKey(t *testing.T) (string, *policy.Record) {
	t.Helper()
	id, rec := newRecord(t)
	f.eraseAfter(t, "secret/metadata/keygate/keys/"+id)
	f.eraseAfter(t, "secret/metadata/keygate/usage/"+id)
	return id, rec
}

// eraseAfter deletes a KV v2 entry's metadata (every version) with the root
// token when the test ends.
func (f *policyFixture) eraseAfter(t *testing.T, metadataPath string) {
	t.Cleanup(func() {
		if _, err := f.root.Logical().Delete(metadataPath); err != nil {
			t.Errorf("cleanup of %s: %v", metadataPath, err)
		}
	})
}

// appendJournal appends one version to the change journal as issue 4
// designs it: read the journal's current_version from its metadata, then
// write the data with check-and-set against it.
func appendJournal(ctx context.Context, c *vaultapi.Client, entry map[string]any) error {
	cas, err := journalVersion(ctx, c)
	if err != nil {
		return err
	}
	_, err = c.Logical().WriteWithContext(ctx, journalPath, map[string]any{
		"options": map[string]any{"cas": cas},
		"data":    entry,
	})
	return err
}

// journalVersion is the journal's current_version, 0 if it has none.
func journalVersion(ctx context.Context, c *vaultapi.Client) (int, error) {
	sec, err := c.Logical().ReadWithContext(ctx, journalMeta)
	if err != nil || sec == nil {
		return 0, err
	}
	return strconv.Atoi(fmt.Sprint(sec.Data["current_version"]))
}

// checkOutcome compares err with want: nil, errDenied (a 403 permission
// denied, from a Store or from vault/api), or an error matched by
// errors.Is.
func checkOutcome(t *testing.T, err, want error) {
	t.Helper()
	if want != errDenied {
		if !errors.Is(err, want) {
			t.Errorf("got %v, want %v", err, want)
		}
		return
	}
	var status int
	var verr *Error
	var rerr *vaultapi.ResponseError
	switch {
	case err == nil:
		t.Fatal("allowed; want 403 permission denied")
	case errors.As(err, &verr):
		status = verr.Status
		if verr.Class() != ClassForbidden {
			t.Errorf("error class %q, want %q", verr.Class(), ClassForbidden)
		}
	case errors.As(err, &rerr):
		status = rerr.StatusCode
	}
	if status != http.StatusForbidden || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("got %v (status %d), want 403 permission denied", err, status)
	}
	if errors.Is(err, policy.ErrKeyNotFound) || errors.Is(err, policy.ErrInvalidRecord) {
		t.Errorf("a 403 must not look like a missing or invalid key: %v", err)
	}
}

// step is one operation attempted with a policy's token.
type step struct {
	name string
	do   func(ctx context.Context) error
	want error // nil, errDenied or a sentinel
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	ctx := context.Background()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { checkOutcome(t, s.do(ctx), s.want) })
	}
}

func apiRead(c *vaultapi.Client, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.Logical().ReadWithContext(ctx, path)
		return err
	}
}

func apiList(c *vaultapi.Client, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.Logical().ListWithContext(ctx, path)
		return err
	}
}

func apiWrite(c *vaultapi.Client, path string, data map[string]any) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.Logical().WriteWithContext(ctx, path, data)
		return err
	}
}

func apiDelete(c *vaultapi.Client, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.Logical().DeleteWithContext(ctx, path)
		return err
	}
}

// TestServerPolicy: the server token reads its keys, the pepper and the
// journal, records when keys were used, reads and merges the hot-key slots,
// and nothing else: no list, no other write, no delete, no other path.
func TestServerPolicy(t *testing.T) {
	f := newPolicyFixture(t)
	ctx := context.Background()
	id, rec := f.newKey(t)
	check(t, f.rootStore.Create(ctx, id, rec))
	absent, absentRec := f.newKey(t)
	f.eraseAfter(t, "secret/metadata/keygate/pepper")
	_, err := f.rootStore.InitPepper(ctx)
	check(t, err)
	f.eraseAfter(t, journalMeta)
	check(t, appendJournal(ctx, f.root, map[string]any{"ids": []string{id}}))
	for _, n := range []int{HotSlot(id), HotSlot(absent)} {
		f.eraseAfter(t, "secret/metadata/keygate/hot/"+strconv.Itoa(n))
	}

	sibling := f.store(t, f.serverTok, "keygate-other")
	c := f.serverAPI
	runSteps(t, []step{
		{"lookup a record", func(ctx context.Context) error {
			got, err := f.server.Lookup(ctx, id)
			if err == nil && got.Hash != rec.Hash {
				return fmt.Errorf("Lookup returned hash %s, want %s", got.Hash, rec.Hash)
			}
			return err
		}, nil},
		// A miss is a clean 404 (unknown key), not a 403 store failure.
		{"lookup a missing key", func(ctx context.Context) error {
			_, err := f.server.Lookup(ctx, absent)
			return err
		}, policy.ErrKeyNotFound},
		{"read the peppers", func(ctx context.Context) error {
			p, err := f.server.Peppers(ctx)
			if err == nil && (p.Current < 1 || len(p.Versions[p.Current]) != pepperLen) {
				return fmt.Errorf("Peppers = current %d, %d versions; want the pepper written by root", p.Current, len(p.Versions))
			}
			return err
		}, nil},
		{"read the journal", apiRead(c, journalPath), nil},
		{"read a journal version", func(ctx context.Context) error {
			sec, err := c.Logical().ReadWithDataWithContext(ctx, journalPath, map[string][]string{"version": {"1"}})
			if err == nil && sec == nil {
				return errors.New("journal version 1: no data")
			}
			return err
		}, nil},
		{"poll the journal as serve does", func(ctx context.Context) error {
			entries, latest, complete, err := f.server.JournalSince(ctx, 0)
			if err == nil && (latest < 1 || !complete || len(entries) == 0) {
				return fmt.Errorf("JournalSince(0) = %d entries, latest %d, complete %v; want the root's append", len(entries), latest, complete)
			}
			return err
		}, nil},

		{"record a key's use", func(ctx context.Context) error { return f.server.RecordUsage(ctx, id, time.Now()) }, nil},
		{"record a key's use again", func(ctx context.Context) error { return f.server.RecordUsage(ctx, id, time.Now()) }, nil},

		{"record hot keys", func(ctx context.Context) error {
			_, err := f.server.RecordHotKeys(ctx, []string{id, absent}, time.Now(), 15*time.Minute)
			return err
		}, nil},
		{"record hot keys again (check-and-set update)", func(ctx context.Context) error {
			_, err := f.server.RecordHotKeys(ctx, []string{id}, time.Now().Add(10*time.Minute), 15*time.Minute)
			return err
		}, nil},
		{"read the hot keys", func(ctx context.Context) error {
			ids, err := f.server.HotKeys(ctx, time.Now().Add(-time.Minute))
			if err == nil && (!slices.Contains(ids, id) || !slices.Contains(ids, absent)) {
				return fmt.Errorf("HotKeys = %v, want %s and %s", ids, id, absent)
			}
			return err
		}, nil},
		{"list the hot-key slots", apiList(c, "secret/metadata/keygate/hot"), errDenied},
		{"read a slot's metadata", apiRead(c, "secret/metadata/keygate/hot/0"), errDenied},
		{"delete a slot", apiDelete(c, "secret/data/keygate/hot/0"), errDenied},
		{"write below a slot", apiWrite(c, "secret/data/keygate/hot/0/x", map[string]any{"data": map[string]any{"seen": map[string]any{}}}), errDenied},
		{"write a record through the hot path", apiWrite(c, "secret/data/keygate/hot/../keys/"+id, map[string]any{"data": map[string]any{"status": "active"}}), errDenied},
		{"record hot keys under a sibling base path", func(ctx context.Context) error {
			_, err := sibling.RecordHotKeys(ctx, []string{id}, time.Now(), 15*time.Minute)
			return err
		}, errDenied},

		{"read a key's use", func(ctx context.Context) error {
			_, _, err := f.server.LastUsed(ctx, id)
			return err
		}, errDenied},
		{"delete a key's use", apiDelete(c, "secret/data/keygate/usage/"+id), errDenied},
		{"list usage", apiList(c, "secret/metadata/keygate/usage"), errDenied},
		{"write a record through the usage path", apiWrite(c, "secret/data/keygate/usage/../keys/"+id, map[string]any{"data": map[string]any{"status": "active"}}), errDenied},
		{"write below a usage entry", apiWrite(c, "secret/data/keygate/usage/x/y", map[string]any{"data": map[string]any{"last_used": "x"}}), errDenied},
		{"record use under a sibling base path", func(ctx context.Context) error { return sibling.RecordUsage(ctx, id, time.Now()) }, errDenied},
		{"delete a key", func(ctx context.Context) error { return f.server.Delete(ctx, id) }, errDenied},
		{"list keys", func(ctx context.Context) error {
			_, err := f.server.List(ctx)
			return err
		}, errDenied},
		{"list the mount", apiList(c, "secret/metadata/"), errDenied},
		{"list the base path", apiList(c, "secret/metadata/keygate"), errDenied},
		{"create a record", func(ctx context.Context) error { return f.server.Create(ctx, absent, absentRec) }, errDenied},
		{"update a record", func(ctx context.Context) error { return f.server.Update(ctx, id, rec, 1) }, errDenied},
		{"write the pepper", func(ctx context.Context) error {
			_, err := f.server.InitPepper(ctx)
			return err
		}, errDenied},
		{"append to the journal", func(ctx context.Context) error {
			return appendJournal(ctx, c, map[string]any{"ids": []string{id}})
		}, errDenied},
		{"delete a record", apiDelete(c, "secret/data/keygate/keys/"+id), errDenied},
		{"delete a record's metadata", apiDelete(c, "secret/metadata/keygate/keys/"+id), errDenied},
		{"destroy a record's versions", apiWrite(c, "secret/destroy/keygate/keys/"+id, map[string]any{"versions": []int{1}}), errDenied},
		{"read a record's metadata", apiRead(c, "secret/metadata/keygate/keys/"+id), errDenied},
		{"read the journal metadata", apiRead(c, journalMeta), errDenied},
		{"write the journal metadata", apiWrite(c, journalMeta, map[string]any{"max_versions": 1}), errDenied},
		// keys/+ is one segment: nothing nested below a record is readable.
		{"read below a record", apiRead(c, "secret/data/keygate/keys/"+id+"/x"), errDenied},
		{"read two levels below keys", apiRead(c, "secret/data/keygate/keys/a/b"), errDenied},
		{"read another path", apiRead(c, "secret/data/other/x"), errDenied},
		{"read another entry under the base path", apiRead(c, "secret/data/keygate/other"), errDenied},
		{"lookup under a sibling base path", func(ctx context.Context) error {
			_, err := sibling.Lookup(ctx, id)
			return err
		}, errDenied},
		{"read sys/policies/acl", apiRead(c, "sys/policies/acl/"+serverPolicy), errDenied},
		{"list sys/policies/acl", apiList(c, "sys/policies/acl"), errDenied},
		{"write a policy", func(ctx context.Context) error {
			return c.Sys().PutPolicyWithContext(ctx, "escalate", `path "*" { capabilities = ["read"] }`)
		}, errDenied},
	})
	// The denied writes changed nothing.
	if _, v, err := f.rootStore.Get(ctx, id); err != nil || v != 1 {
		t.Errorf("record after the server's attempts: version %d, %v; want 1, nil", v, err)
	}
	if _, err := f.rootStore.Lookup(ctx, absent); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("key the server tried to create: %v, want ErrKeyNotFound", err)
	}
}

// TestAdminPolicy: the admin token can do what the CLI does (create, show,
// update with check-and-set, list, rotate the pepper, append to the
// journal, read when keys were used, soft-delete a key) and nothing else: no
// erasing of history, no other path, nothing under sys/.
func TestAdminPolicy(t *testing.T) {
	f := newPolicyFixture(t)
	id, rec := f.newKey(t)
	f.eraseAfter(t, "secret/metadata/keygate/pepper")
	f.eraseAfter(t, journalMeta)
	f.eraseAfter(t, "secret/metadata/keygate/keys/"+id+"/x") // only if the nested write were allowed

	sibling := f.store(t, f.adminTok, "keygate-other")
	siblingID, siblingRec := newRecord(t)
	used := time.Now().UTC().Truncate(time.Second)
	check(t, f.rootStore.RecordUsage(context.Background(), id, used))
	c := f.adminAPI
	runSteps(t, []step{
		{"create a record", func(ctx context.Context) error { return f.admin.Create(ctx, id, rec) }, nil},
		{"create it again", func(ctx context.Context) error { return f.admin.Create(ctx, id, rec) }, policy.ErrKeyExists},
		{"get the record", func(ctx context.Context) error {
			got, v, err := f.admin.Get(ctx, id)
			if err == nil && (v != 1 || got.Hash != rec.Hash) {
				return fmt.Errorf("Get = version %d, hash %s; want 1, %s", v, got.Hash, rec.Hash)
			}
			return err
		}, nil},
		{"update with check-and-set", func(ctx context.Context) error {
			revoked := *rec
			revoked.Status = policy.StatusRevoked
			return f.admin.Update(ctx, id, &revoked, 1)
		}, nil},
		{"update a stale version", func(ctx context.Context) error { return f.admin.Update(ctx, id, rec, 1) }, policy.ErrConflict},
		{"list keys", func(ctx context.Context) error {
			ids, err := f.admin.List(ctx)
			if err == nil && !slices.Contains(ids, id) {
				return fmt.Errorf("List = %v, want it to contain %s", ids, id)
			}
			return err
		}, nil},
		{"rotate the pepper", func(ctx context.Context) error {
			_, err := f.admin.InitPepper(ctx)
			return err
		}, nil},
		{"rotate the pepper again", func(ctx context.Context) error {
			_, err := f.admin.InitPepper(ctx)
			return err
		}, nil},
		{"read the peppers", func(ctx context.Context) error {
			p, err := f.admin.Peppers(ctx)
			if err == nil && len(p.Versions) < 2 {
				return fmt.Errorf("Peppers has %d versions after two rotations", len(p.Versions))
			}
			return err
		}, nil},
		{"append to the journal", func(ctx context.Context) error { return f.admin.AppendJournal(ctx, "revoke", id) }, nil},
		{"append to the journal again", func(ctx context.Context) error { return f.admin.AppendJournal(ctx, "update", id) }, nil},
		{"read the journal", apiRead(c, journalPath), nil},
		{"read a key's use", func(ctx context.Context) error {
			at, ok, err := f.admin.LastUsed(ctx, id)
			if err == nil && (!ok || !at.Equal(used)) {
				return fmt.Errorf("LastUsed = %v, %v; want %v, true", at, ok, used)
			}
			return err
		}, nil},
		{"delete a key (record and use)", func(ctx context.Context) error { return f.admin.Delete(ctx, id) }, nil},
		{"look up the deleted key", func(ctx context.Context) error {
			_, err := f.admin.Lookup(ctx, id)
			return err
		}, policy.ErrKeyNotFound},
		{"its use is gone too", func(ctx context.Context) error {
			if _, ok, err := f.admin.LastUsed(ctx, id); err != nil || ok {
				return fmt.Errorf("LastUsed after delete: found %v, %v", ok, err)
			}
			return nil
		}, nil},
		{"delete it again", func(ctx context.Context) error { return f.admin.Delete(ctx, id) }, policy.ErrKeyNotFound},

		{"write a key's use", func(ctx context.Context) error { return f.admin.RecordUsage(ctx, id, time.Now()) }, errDenied},
		{"delete a record's metadata", apiDelete(c, "secret/metadata/keygate/keys/"+id), errDenied},
		{"delete a key's use metadata", apiDelete(c, "secret/metadata/keygate/usage/"+id), errDenied},
		{"destroy a record's versions", apiWrite(c, "secret/destroy/keygate/keys/"+id, map[string]any{"versions": []int{1}}), errDenied},
		{"read a record's metadata", apiRead(c, "secret/metadata/keygate/keys/"+id), errDenied},
		{"write a record's metadata", apiWrite(c, "secret/metadata/keygate/keys/"+id, map[string]any{"max_versions": 1}), errDenied},
		// keys/+ and usage/+ are one segment: nothing nested below them.
		{"write below a record", apiWrite(c, "secret/data/keygate/keys/"+id+"/x", map[string]any{"data": map[string]any{"status": "active"}}), errDenied},
		{"read two levels below keys", apiRead(c, "secret/data/keygate/keys/a/b"), errDenied},
		{"read below a usage entry", apiRead(c, "secret/data/keygate/usage/"+id+"/x"), errDenied},
		{"delete below a usage entry", apiDelete(c, "secret/data/keygate/usage/"+id+"/x"), errDenied},
		{"read the journal metadata", apiRead(c, journalMeta), errDenied},
		{"delete the journal", apiDelete(c, journalMeta), errDenied},
		{"write the journal metadata", apiWrite(c, journalMeta, map[string]any{"max_versions": 1}), errDenied},
		{"list a sub-folder of the keys", apiList(c, "secret/metadata/keygate/keys/sub"), errDenied},
		{"list the mount", apiList(c, "secret/metadata/"), errDenied},
		{"read another path", apiRead(c, "secret/data/other/x"), errDenied},
		{"write another path", apiWrite(c, "secret/data/other/x", map[string]any{"data": map[string]any{"a": "b"}}), errDenied},
		{"create under a sibling base path", func(ctx context.Context) error {
			return sibling.Create(ctx, siblingID, siblingRec)
		}, errDenied},
		{"read sys/policies/acl", apiRead(c, "sys/policies/acl/"+adminPolicy), errDenied},
		{"write a policy", func(ctx context.Context) error {
			return c.Sys().PutPolicyWithContext(ctx, adminPolicy, `path "*" { capabilities = ["sudo", "read"] }`)
		}, errDenied},
		{"mount a secrets engine", func(ctx context.Context) error {
			return c.Sys().MountWithContext(ctx, "keygate-escalate", &vaultapi.MountInput{Type: "kv"})
		}, errDenied},
	})
	// The journal holds the two appends, each a version.
	if v, err := journalVersion(context.Background(), f.root); err != nil || v != 2 {
		t.Errorf("journal current_version = %d, %v; want 2", v, err)
	}
}

// stanza is one `path "..." { capabilities = [...] }` block of a policy.
type stanza struct {
	path string
	caps []string // sorted
}

var (
	hclComment   = regexp.MustCompile(`(?m)(#|//).*$`)
	hclPathStart = regexp.MustCompile(`\bpath\s+"`)
	hclStanza    = regexp.MustCompile(`\bpath\s+"([^"]*)"\s*\{([^{}]*)\}`)
	hclCaps      = regexp.MustCompile(`\bcapabilities\s*=\s*\[([^\]]*)\]`)
	hclString    = regexp.MustCompile(`"([^"]*)"`)
)

// parsePolicy reads the stanzas of a policy written as the files in
// vault/policies are: line comments, flat path blocks with one
// capabilities list each. Anything else fails the test, so the checks
// below cannot be fooled by a construct the regexps do not see.
func parsePolicy(t *testing.T, text string) []stanza {
	t.Helper()
	text = hclComment.ReplaceAllString(text, "")
	blocks := hclStanza.FindAllStringSubmatch(text, -1)
	if n := len(hclPathStart.FindAllString(text, -1)); n != len(blocks) || n == 0 {
		t.Fatalf("%d path blocks, %d parsed: keep the policy to flat path blocks", n, len(blocks))
	}
	var out []stanza
	for _, b := range blocks {
		lists := hclCaps.FindAllStringSubmatch(b[2], -1)
		if len(lists) != 1 {
			t.Fatalf("path %q: %d capabilities lists, want 1", b[1], len(lists))
		}
		s := stanza{path: b[1]}
		for _, m := range hclString.FindAllStringSubmatch(lists[0][1], -1) {
			s.caps = append(s.caps, m[1])
		}
		slices.Sort(s.caps)
		out = append(out, s)
	}
	return out
}

// TestPolicyFiles: Vault accepts both files as they are on disk, and their
// content is what the README and the tests above promise. Vault's own
// reading of each stanza (sys/capabilities) must agree with the parse.
func TestPolicyFiles(t *testing.T) {
	v := vaulttest.Server(t)
	root := v.Client(t)
	ctx := context.Background()
	want := map[string][]stanza{
		serverPolicy: {
			{"secret/data/keygate/keys/+", []string{"read"}},
			{"secret/data/keygate/pepper", []string{"read"}},
			{"secret/data/keygate/journal", []string{"read"}},
			{"secret/data/keygate/usage/+", []string{"create", "update"}},
			{"secret/data/keygate/hot/+", []string{"create", "read", "update"}},
		},
		adminPolicy: {
			{"secret/data/keygate/keys/+", []string{"create", "delete", "read", "update"}},
			{"secret/data/keygate/usage/+", []string{"delete", "read"}},
			{"secret/metadata/keygate/keys", []string{"list"}},
			{"secret/data/keygate/pepper", []string{"create", "read", "update"}},
			{"secret/data/keygate/journal", []string{"create", "read", "update"}},
		},
		pluginServerPolicy: {
			{"keygate/keys/+", []string{"read"}},
			{"keygate/journal", []string{"read"}},
			{"secret/data/keygate/pepper", []string{"read"}},
			{"secret/data/keygate/usage/+", []string{"create", "update"}},
			{"secret/data/keygate/hot/+", []string{"create", "read", "update"}},
		},
		pluginAdminPolicy: {
			{"keygate/keys/+", []string{"create", "delete", "read", "update"}},
			{"keygate/keys", []string{"list"}},
			{"keygate/journal", []string{"read", "update"}},
			{"keygate/roles/+", []string{"create", "delete", "read", "update"}},
			{"keygate/roles", []string{"list"}},
			{"secret/data/keygate/usage/+", []string{"delete", "read"}},
		},
	}
	want[leakPolicy] = []stanza{
		{"secret/data/keygate/keys/+", []string{"read"}},
		{"secret/data/keygate/pepper", []string{"read"}},
	}
	want[leakRevokePolicy] = []stanza{
		{"secret/data/keygate/keys/+", []string{"update"}},
		{"secret/data/keygate/journal", []string{"create", "read", "update"}},
	}
	for _, name := range []string{serverPolicy, adminPolicy, pluginServerPolicy, pluginAdminPolicy, leakPolicy, leakRevokePolicy} {
		t.Run(name, func(t *testing.T) {
			text := readPolicyFile(t, name)
			// Vault parses and validates the HCL.
			check(t, root.Sys().PutPolicyWithContext(ctx, name, text))
			if got, err := root.Sys().GetPolicyWithContext(ctx, name); err != nil || got != text {
				t.Fatalf("GetPolicy(%s) does not return the file: %v", name, err)
			}

			stanzas := parsePolicy(t, text)
			if diff := cmp.Diff(want[name], stanzas, cmp.AllowUnexported(stanza{})); diff != "" {
				t.Errorf("stanzas (-want +got):\n%s", diff)
			}
			for _, s := range stanzas {
				usage := strings.HasPrefix(s.path, "secret/data/keygate/usage/")
				hot := s.path == "secret/data/keygate/hot/+"
				if (name == serverPolicy || name == pluginServerPolicy || name == leakPolicy) && !slices.Equal(s.caps, []string{"read"}) && !usage && !hot {
					t.Errorf("server policy, path %q: capabilities %v; the server may only read (and record key use and hot keys)", s.path, s.caps)
				}
				softDelete := name == adminPolicy && (usage || s.path == "secret/data/keygate/keys/+") ||
					name == pluginAdminPolicy && (usage || s.path == "keygate/keys/+" || s.path == "keygate/roles/+")
				for _, c := range s.caps {
					if c == "delete" && !softDelete || c == "sudo" || c == "patch" || c == "deny" {
						t.Errorf("path %q grants %q (see the policy's header before changing this test)", s.path, c)
					}
				}
				engine := name == pluginServerPolicy && (s.path == "keygate/keys/+" || s.path == "keygate/journal") ||
					name == pluginAdminPolicy && strings.HasPrefix(s.path, "keygate/")
				if !engine && !strings.HasPrefix(s.path, "secret/data/keygate/") && !strings.HasPrefix(s.path, "secret/metadata/keygate/") {
					t.Errorf("path %q is outside secret/{data,metadata}/keygate/ (and, for the plugin's server, keygate/keys/+ and keygate/journal)", s.path)
				}
				if strings.Contains(strings.TrimSuffix(s.path, "/+"), "+") || strings.Contains(s.path, "*") {
					t.Errorf("path %q: the only glob allowed is a whole last segment /+ (one id); * also grants every nested path", s.path)
				}
			}

			// What Vault grants a token with only this policy on each path
			// is what the parse says.
			tok := policyToken(t, root, name)
			for _, s := range stanzas {
				probe := strings.NewReplacer("*", "AbCdEf012345", "+", "AbCdEf012345").Replace(s.path)
				got, err := root.Sys().CapabilitiesWithContext(ctx, tok, probe)
				check(t, err)
				slices.Sort(got)
				if !slices.Equal(got, s.caps) {
					t.Errorf("Vault's capabilities on %s = %v, the file says %v", probe, got, s.caps)
				}
				// Nothing nested below a path is granted (but what another
				// stanza grants: keygate/keys and keygate/keys/+).
				if slices.ContainsFunc(stanzas, func(o stanza) bool { return o.path == s.path+"/+" }) {
					continue
				}
				got, err = root.Sys().CapabilitiesWithContext(ctx, tok, probe+"/nested")
				check(t, err)
				if !slices.Equal(got, []string{"deny"}) {
					t.Errorf("Vault's capabilities on %s/nested = %v, want [deny]", probe, got)
				}
			}
		})
	}
}
