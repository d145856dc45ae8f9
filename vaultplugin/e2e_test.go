package vaultplugin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vaultplugin"
)

const mount = "keygate"

// e2e is a plugin-enabled dev server with the engine mounted at keygate/.
type e2e struct {
	t     *testing.T
	v     *vaulttest.Vault
	root  *vaultapi.Client
	audit string // file audit log

	rawKeys []string // every key issued: none may appear in a log
}

func startE2E(t *testing.T) *e2e {
	t.Helper()
	pluginDir := t.TempDir()
	v := vaulttest.PluginServer(t, pluginDir) // first: skips without the Vault binary
	start := time.Now()
	sum := vaulttest.BuildPlugin(t, "github.com/keygate/keygate/cmd/keygate-vault-plugin", pluginDir, "keygate-vault-plugin")
	t.Logf("plugin built in %s", time.Since(start).Round(time.Millisecond))
	e := &e2e{t: t, v: v, root: v.Client(t), audit: filepath.Join(v.Dir(), "audit.log")}
	sys := e.root.Sys()
	// A real cluster's steps: register by type, name, version and SHA-256, then enable.
	err := sys.RegisterPlugin(&vaultapi.RegisterPluginInput{
		Name: vaultplugin.Name, Type: vaultapi.PluginTypeSecrets, Command: "keygate-vault-plugin",
		SHA256: sum, Version: vaultplugin.Version,
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := sys.Mount(mount, &vaultapi.MountInput{Type: vaultplugin.Name}); err != nil {
		t.Fatalf("enable: %v", err)
	}
	err = sys.EnableAuditWithOptions("file", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.audit}})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return e
}

func (e *e2e) write(c *vaultapi.Client, path string, data map[string]any) (*vaultapi.Secret, error) {
	return c.Logical().WriteWithContext(context.Background(), mount+"/"+path, data)
}

func (e *e2e) mustWrite(path string, data map[string]any) *vaultapi.Secret {
	e.t.Helper()
	s, err := e.write(e.root, path, data)
	if err != nil {
		e.t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// record reads a key's record through the engine, as keygate would.
func (e *e2e) record(id string) *policy.Record {
	e.t.Helper()
	s, err := e.root.Logical().Read(mount + "/keys/" + id)
	if err != nil || s == nil {
		e.t.Fatalf("read key %s: %v (%v)", id, err, s)
	}
	body, _ := json.Marshal(s.Data["record"])
	rec, err := policy.ParseRecord(body)
	if err != nil {
		e.t.Fatalf("key %s: %v", id, err)
	}
	return rec
}

func (e *e2e) keyIDs() []string {
	e.t.Helper()
	s, err := e.root.Logical().List(mount + "/keys/")
	if err != nil {
		e.t.Fatal(err)
	}
	if s == nil {
		return nil
	}
	var ids []string
	for _, k := range s.Data["keys"].([]any) {
		ids = append(ids, k.(string))
	}
	return ids
}

// teamClient is a token whose only policy lets it issue for team-a.
func (e *e2e) teamClient() *vaultapi.Client {
	e.t.Helper()
	const teamPolicy = `path "keygate/issue/team-a" { capabilities = ["update"] }`
	if err := e.root.Sys().PutPolicy("team-a-issuer", teamPolicy); err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"team-a-issuer"}, DisplayName: "team-a-ci"})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.root.Clone()
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetToken(tok.Auth.ClientToken)
	return c
}

func is403(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == 403
}

func TestEngineOnVault(t *testing.T) {
	e := startE2E(t)
	e.mustWrite("roles/team-a", map[string]any{"tenant": "acme", "allowed_scopes": "orders:read,orders:write", "default_ttl": "10s", "max_ttl": "60s", "max_rate_limit": "50/second"})
	e.mustWrite("roles/team-b", map[string]any{"tenant": "globex", "allowed_scopes": "billing:read"})
	team := e.teamClient()
	e.delegation(team)
	e.expiry()
	e.revokePrefix(team)
	e.revokeLatency()
	e.reload()
	e.adminPath()
	checkAudit(t, e, e.rawKeys)
	checkVaultLog(t, e, e.rawKeys)
}

// delegation: a role-scoped token issues for its role only; renewal and
// lease revocation reach the record.
func (e *e2e) delegation(team *vaultapi.Client) {
	t := e.t
	// A role-scoped policy issues for its role, and nothing else.
	issued, err := e.write(team, "issue/team-a", map[string]any{"ttl": "10s", "scopes": "orders:read", "name": "ci"})
	if err != nil {
		t.Fatalf("team issue: %v", err)
	}
	e.rawKeys = append(e.rawKeys, issued.Data["key"].(string))
	id := issued.Data["id"].(string)
	if issued.LeaseID == "" || issued.LeaseDuration != 10 || !issued.Renewable || !strings.HasPrefix(issued.LeaseID, mount+"/issue/team-a/") {
		t.Fatalf("lease %q %ds renewable %v", issued.LeaseID, issued.LeaseDuration, issued.Renewable)
	}
	before := e.keyIDs()
	for _, try := range []struct{ path string }{{"issue/team-b"}, {"keys/" + id}, {"roles/team-a"}, {"keys/" + id + "/revoke"}, {"import"}} {
		_, err := e.write(team, try.path, map[string]any{"tenant": "x", "record": map[string]any{}, "cas": 1, "file": "keys: []"})
		if !is403(err) {
			t.Errorf("team token writing %s: %v, want 403", try.path, err)
		}
	}
	if after := e.keyIDs(); !slices.Equal(after, before) {
		t.Fatalf("a refused write changed the keys: %v → %v", before, after)
	}
	rec := e.record(id)
	if exp := rec.ExpiresAtTime(); rec.Status != "active" || exp.Before(time.Now().Add(5*time.Second)) || exp.After(time.Now().Add(11*time.Second)) {
		t.Fatalf("issued record: status %s expires_at %s", rec.Status, rec.ExpiresAt)
	}

	// Renewal extends expires_at.
	renewed, err := e.root.Sys().Renew(issued.LeaseID, 40)
	if err != nil || renewed.LeaseDuration < 39 {
		t.Fatalf("renew: %v %+v", err, renewed)
	}
	if exp := e.record(id).ExpiresAtTime(); exp.Before(time.Now().Add(30 * time.Second)) {
		t.Fatalf("after renewal expires_at %s", exp)
	}

	// sys/leases/revoke revokes the key.
	start := time.Now()
	if err := e.root.Sys().Revoke(issued.LeaseID); err != nil {
		t.Fatal(err)
	}
	t.Logf("lease revoke took %s", time.Since(start).Round(time.Microsecond))
	if rec := e.record(id); rec.Status != "revoked" || rec.RevokedReason != "lease revoked" {
		t.Fatalf("after lease revoke: %s %q", rec.Status, rec.RevokedReason)
	}
}

// expiry: a lease that runs out revokes its key.
func (e *e2e) expiry() {
	t := e.t
	short := e.mustWrite("issue/team-a", map[string]any{"ttl": "2s"})
	e.rawKeys = append(e.rawKeys, short.Data["key"].(string))
	waitRevoked(t, e, short.Data["id"].(string), 15*time.Second)
}

// revokePrefix: revoke-prefix revokes every key of a role; issue latency
// is measured on the way.
func (e *e2e) revokePrefix(team *vaultapi.Client) {
	t := e.t
	var ids []string
	var issueTimes []time.Duration
	for range 20 {
		start := time.Now()
		s, err := e.write(team, "issue/team-a", map[string]any{"ttl": "60s"})
		issueTimes = append(issueTimes, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
		ids, e.rawKeys = append(ids, s.Data["id"].(string)), append(e.rawKeys, s.Data["key"].(string))
	}
	logLatency(t, "issue (through the plugin, team token)", issueTimes)
	start := time.Now()
	if err := e.root.Sys().RevokePrefix(mount + "/issue/team-a"); err != nil {
		t.Fatal(err)
	}
	t.Logf("revoke-prefix of %d leases took %s", len(ids), time.Since(start).Round(time.Millisecond))
	for _, id := range ids {
		if rec := e.record(id); rec.Status != "revoked" {
			t.Fatalf("key %s after revoke-prefix: %s", id, rec.Status)
		}
	}
}

// revokeLatency measures revocation by lease and by keys/<id>/revoke.
func (e *e2e) revokeLatency() {
	t := e.t
	var leaseRevokes, pathRevokes []time.Duration
	for range 10 {
		s := e.mustWrite("issue/team-a", nil)
		e.rawKeys = append(e.rawKeys, s.Data["key"].(string))
		start := time.Now()
		if err := e.root.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatal(err)
		}
		leaseRevokes = append(leaseRevokes, time.Since(start))
		s = e.mustWrite("issue/team-a", nil)
		e.rawKeys = append(e.rawKeys, s.Data["key"].(string))
		start = time.Now()
		e.mustWrite("keys/"+s.Data["id"].(string)+"/revoke", map[string]any{"reason": "test"})
		pathRevokes = append(pathRevokes, time.Since(start))
	}
	logLatency(t, "sys/leases/revoke", leaseRevokes)
	logLatency(t, "keys/<id>/revoke", pathRevokes)
}

// reload: a plugin reload loses nothing.
func (e *e2e) reload() {
	t := e.t
	live := e.mustWrite("issue/team-a", map[string]any{"ttl": "60s"})
	e.rawKeys = append(e.rawKeys, live.Data["key"].(string))
	keysBefore := e.keyIDs()
	journalBefore := e.mustRead("journal", nil)
	if _, err := e.root.Sys().ReloadPluginWithContext(context.Background(), &vaultapi.ReloadPluginInput{Plugin: vaultplugin.Name}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if after := e.keyIDs(); !slices.Equal(after, keysBefore) {
		t.Fatalf("keys after reload: %d, before %d", len(after), len(keysBefore))
	}
	if j := e.mustRead("journal", nil); j.Data["latest"] != journalBefore.Data["latest"] {
		t.Fatalf("journal after reload: %v, before %v", j.Data["latest"], journalBefore.Data["latest"])
	}
	if _, err := e.root.Sys().Renew(live.LeaseID, 30); err != nil {
		t.Fatalf("renew after reload: %v", err)
	}
	if err := e.root.Sys().Revoke(live.LeaseID); err != nil {
		t.Fatal(err)
	}
	if rec := e.record(live.Data["id"].(string)); rec.Status != "revoked" {
		t.Fatalf("revoke after reload: %s", rec.Status)
	}
}

// adminPath: bad input, and check-and-set writes through Vault's HTTP API.
func (e *e2e) adminPath() {
	t := e.t
	// Bad input gets Vault's 400 naming the field.
	if _, err := e.write(e.root, "issue/team-a", map[string]any{"scopes": "admin"}); err == nil || !strings.Contains(err.Error(), `"scopes"`) || !strings.Contains(err.Error(), "Code: 400") {
		t.Fatalf("bad issue: %v", err)
	}

	// The admin path: check-and-set writes with numbers in the record, and
	// the journal read with after, through Vault's HTTP API.
	adminRec := map[string]any{"hash": "sha256:" + strings.Repeat("cd", 32), "tenant": "acme", "status": "active",
		"rate_limit": map[string]any{"requests": 5, "per": "second", "burst": 7}}
	e.mustWrite("keys/CCCCCCCCCCCC", map[string]any{"record": adminRec, "cas": 0})
	if _, err := e.write(e.root, "keys/CCCCCCCCCCCC", map[string]any{"record": adminRec, "cas": 0}); err == nil || !strings.Contains(err.Error(), "check-and-set") {
		t.Fatalf("second create: %v", err)
	}
	adminRec["name"] = "renamed"
	e.mustWrite("keys/CCCCCCCCCCCC", map[string]any{"record": adminRec, "cas": 1})
	if got := e.record("CCCCCCCCCCCC"); got.RateLimit == nil || got.RateLimit.Burst != 7 || got.Name != "renamed" {
		t.Fatalf("admin write read back as %+v", got)
	}
	j := e.mustRead("journal", map[string][]string{"after": {"0"}})
	if entries := j.Data["entries"].([]any); len(entries) == 0 || j.Data["complete"] != true {
		t.Fatalf("journal after=0: %v", j.Data)
	}
}

func (e *e2e) mustRead(path string, data map[string][]string) *vaultapi.Secret {
	e.t.Helper()
	s, err := e.root.Logical().ReadWithData(mount+"/"+path, data)
	if err != nil || s == nil {
		e.t.Fatalf("read %s: %v", path, err)
	}
	return s
}

func waitRevoked(t *testing.T, e *e2e, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if rec := e.record(id); rec.Status == "revoked" {
			if rec.RevokedReason != "lease revoked" {
				t.Fatalf("expired lease: reason %q", rec.RevokedReason)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("key %s not revoked within %s of its lease's end", id, within)
}

func logLatency(t *testing.T, what string, d []time.Duration) {
	t.Helper()
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	t.Logf("%s: n=%d median %s p90 %s max %s", what, len(d),
		d[len(d)/2].Round(time.Microsecond), d[len(d)*9/10].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}

// checkAudit: the file audit log names the issuing token's display name
// for the issue, and holds no raw key (Vault HMACs response strings).
func checkAudit(t *testing.T, e *e2e, rawKeys []string) {
	t.Helper()
	data, err := os.ReadFile(e.audit)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range rawKeys {
		if strings.Contains(string(data), k) {
			t.Fatalf("a raw key is in the audit log")
		}
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var entry struct {
			Type string `json:"type"`
			Auth struct {
				DisplayName string `json:"display_name"`
			} `json:"auth"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
			Response struct {
				Data map[string]any `json:"data"`
			} `json:"response"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) != nil || entry.Type != "response" || entry.Request.Path != mount+"/issue/team-a" {
			continue
		}
		key, _ := entry.Response.Data["key"].(string)
		if entry.Auth.DisplayName == "token-team-a-ci" && strings.HasPrefix(key, "hmac-sha256:") {
			found = true
			t.Logf("audit: issue by %q, response key logged as %s…", entry.Auth.DisplayName, key[:20])
			break
		}
	}
	if !found {
		t.Fatalf("no audit response entry for an issue by token-team-a-ci with an HMACed key")
	}
}

// checkVaultLog: Vault's own log (which holds the plugin's) has no raw key.
func checkVaultLog(t *testing.T, e *e2e, rawKeys []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.v.Dir(), "vault.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range rawKeys {
		if strings.Contains(string(data), k) {
			t.Fatalf("a raw key is in Vault's log")
		}
	}
}
