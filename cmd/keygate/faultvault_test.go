package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// faultVault is the Vault side of the fault matrix: a root client for the
// test's own changes, the CLI's environment, and keygate's least-privilege
// policy and token. keygate reads its token from a file (as from Vault
// Agent) unless a row says otherwise.
type faultVault struct {
	v         *vaulttest.Vault
	admin     *vaultapi.Client // root, straight to Vault
	env       envMap           // the CLI's: root token
	base      string
	policy    string
	token     string // keygate's current token (a custom id, so a restarted Vault can get it back)
	tokenFile string
}

func newFaultVault(t *testing.T) *faultVault {
	t.Helper()
	env := vaultEnv(t)
	v := vaulttest.Server(t)
	fv := &faultVault{v: v, admin: v.Client(t), env: env, base: env["KEYGATE_VAULT_BASE_PATH"],
		tokenFile: filepath.Join(t.TempDir(), "vault-token")}
	fv.policy = "kg-" + fv.base
	fv.writePolicy(t)
	return fv
}

// writePolicy is keygate-server.hcl for the test's base path, minus the
// usage writes (the matrix runs with --usage-interval 0).
func (fv *faultVault) writePolicy(t *testing.T) {
	t.Helper()
	rules := fmt.Sprintf("path \"secret/data/%[1]s/keys/+\" { capabilities = [\"read\"] }\n"+
		"path \"secret/data/%[1]s/pepper\" { capabilities = [\"read\"] }\n"+
		"path \"secret/data/%[1]s/journal\" { capabilities = [\"read\"] }\n", fv.base)
	if err := fv.admin.Sys().PutPolicy(fv.policy, rules); err != nil {
		t.Fatalf("put policy: %v", err)
	}
}

// newToken makes a token with keygate's policy and the given id ("" for
// a fresh one), and returns it.
func (fv *faultVault) newToken(t *testing.T, id string) string {
	t.Helper()
	if id == "" {
		b := make([]byte, 12)
		rand.Read(b)
		id = "kgfault-" + hex.EncodeToString(b)
	}
	sec, err := fv.admin.Auth().Token().Create(&vaultapi.TokenCreateRequest{
		ID: id, Policies: []string{fv.policy}, NoParent: true, TTL: "1h",
	})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("create keygate's token: %v", err)
	}
	return sec.Auth.ClientToken
}

// useNewToken makes a fresh token keygate's and writes it to the token
// file.
func (fv *faultVault) useNewToken(t *testing.T) {
	t.Helper()
	fv.token = fv.newToken(t, "")
	if err := writeFileBytes(fv.tokenFile, []byte(fv.token+"\n")); err != nil {
		t.Fatal(err)
	}
}

// revokeToken revokes keygate's current token; Vault then answers 403.
func (fv *faultVault) revokeToken(t *testing.T) {
	t.Helper()
	if err := fv.admin.Auth().Token().RevokeTree(fv.token); err != nil {
		t.Fatalf("revoke keygate's token: %v", err)
	}
}

func (fv *faultVault) keyPath(id string) string { return "secret/data/" + fv.base + "/keys/" + id }

// revokeDirect sets a record's status to revoked straight in Vault: no
// CLI, so no journal entry; keygate learns of it only by re-reading.
func (fv *faultVault) revokeDirect(t *testing.T, id string) {
	t.Helper()
	data := fv.record(t, id)
	data["status"] = "revoked"
	if _, err := fv.admin.Logical().Write(fv.keyPath(id), map[string]any{"data": data}); err != nil {
		t.Fatalf("revoke %s in Vault: %v", id, err)
	}
}

func (fv *faultVault) record(t *testing.T, id string) map[string]any {
	t.Helper()
	sec, err := fv.admin.Logical().Read(fv.keyPath(id))
	if err != nil || sec == nil {
		t.Fatalf("read %s: %v", id, err)
	}
	data, ok := sec.Data["data"].(map[string]any)
	if !ok {
		t.Fatalf("record %s: no data", id)
	}
	return data
}

// vaultState is what a restarted (empty) dev server needs for a row to
// go on: keygate's policy and token, and the row's key records.
type vaultState struct {
	token   string
	records map[string]map[string]any
}

func (fv *faultVault) snapshot(t *testing.T, keys faultKeys) vaultState {
	t.Helper()
	st := vaultState{token: fv.token, records: map[string]map[string]any{}}
	for _, k := range keys {
		st.records[k.ID] = fv.record(t, k.ID)
	}
	return st
}

func (fv *faultVault) restore(t *testing.T, st vaultState) {
	t.Helper()
	fv.writePolicy(t)
	fv.newToken(t, st.token)
	for id, data := range st.records {
		if _, err := fv.admin.Logical().Write(fv.keyPath(id), map[string]any{"data": data}); err != nil {
			t.Fatalf("restore %s: %v", id, err)
		}
	}
}

const quotaName = "kgfault"

// limit adds a rate-limit quota of one request an hour on the KV mount and
// uses up that one request, so Vault answers 429 to every KV read
// (quotas are per client IP: the test and keygate are both 127.0.0.1).
func (fv *faultVault) limit(t *testing.T) {
	t.Helper()
	if _, err := fv.admin.Logical().Write("sys/quotas/rate-limit/"+quotaName,
		map[string]any{"path": "secret/", "rate": 1, "interval": "1h"}); err != nil {
		t.Fatalf("create rate-limit quota: %v", err)
	}
	for range 5 {
		_, err := fv.admin.Logical().Read("secret/data/" + fv.base + "/probe")
		var re *vaultapi.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("the rate-limit quota never answered 429")
}

func (fv *faultVault) unlimit(t *testing.T) {
	t.Helper()
	if _, err := fv.admin.Logical().Delete("sys/quotas/rate-limit/" + quotaName); err != nil {
		t.Fatalf("delete rate-limit quota: %v", err)
	}
}

// closeIdle drops the root client's idle connections (their goroutines
// would otherwise count as keygate's).
func (fv *faultVault) closeIdle() { fv.admin.CloneConfig().HttpClient.CloseIdleConnections() }

// junkBodies are answers no real Vault gives: an HTML error page from a
// proxy in front of it, empty 5xx, 200s that are not KV v2 JSON, a JSON
// 404 that is not Vault's (`{}`, an API gateway's), and a 200 whose data is
// missing or null without deletion metadata. All are store failures, never
// "no such key".
var junkBodies = []struct {
	status int
	body   string
}{
	{502, "<html><body>502 Bad Gateway</body></html>"},
	{500, "<html>upstream exploded</html>"},
	{504, ""},
	{200, "garbage"},
	{200, `{"data":{"data":{"hash":"sha256:`},
	{200, `[1,2]`},
	{200, `{}`},
	{404, `{}`},
	{404, `{"message":"no Route matched with those values"}`},
	{200, `{"data":{}}`},
	{200, `{"data":{"data":null,"metadata":{"version":3}}}`},
}

// junkServer stands between keygate and Vault as an HTTP reverse proxy;
// when on, it answers every request with the next of junkBodies instead.
type junkServer struct {
	srv       *httptest.Server
	transport *http.Transport
	on        atomic.Bool
	served    atomic.Int64
}

func startJunk(t *testing.T, vaultAddr string) *junkServer {
	t.Helper()
	target, err := url.Parse(vaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	j := &junkServer{transport: &http.Transport{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = j.transport
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !j.on.Load() {
			rp.ServeHTTP(w, r)
			return
		}
		b := junkBodies[int(j.served.Add(1)-1)%len(junkBodies)]
		if strings.HasPrefix(b.body, "<html>") {
			w.Header().Set("Content-Type", "text/html")
		}
		w.WriteHeader(b.status)
		io.WriteString(w, b.body)
	}))
	t.Cleanup(func() { j.srv.Close(); j.transport.CloseIdleConnections() })
	return j
}

// closeConns drops keygate's connections to the junk server and its own
// to Vault.
func (j *junkServer) closeConns() {
	j.srv.CloseClientConnections()
	j.transport.CloseIdleConnections()
}
