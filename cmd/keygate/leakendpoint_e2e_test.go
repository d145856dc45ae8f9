package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
	"github.com/keygate/keygate/policy"
)

// fakeGitHub is GitHub's side of the partner program, made by the test: a
// P-256 signing key and the key document naming it.
type fakeGitHub struct {
	id      string
	key     *ecdsa.PrivateKey
	docPath string
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGitHub{id: "e2e-gh-key", key: k, docPath: filepath.Join(t.TempDir(), "secret_scanning.json")}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{"key_identifier": g.id, "is_current": true,
		"key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}})
	if err := os.WriteFile(g.docPath, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *fakeGitHub) sign(t *testing.T, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, g.key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// leakEndpoint is a `keygate leak-endpoint` running in-process.
type leakEndpoint struct {
	url  string
	logs *syncBuffer
}

var leakURLRE = regexp.MustCompile(`keygate leak-endpoint: (http://\S+)`)

// startLeakEndpoint runs keygate leak-endpoint on a random loopback port;
// at cleanup it stops it and checks that its output holds none of keys.
func startLeakEndpoint(t *testing.T, env envMap, keys func() []string, args ...string) *leakEndpoint {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	l := &leakEndpoint{logs: &syncBuffer{}}
	done := make(chan error, 1)
	args = append([]string{"leak-endpoint", "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)
	go func() { done <- run(ctx, args, env.get, strings.NewReader(""), out, l.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("leak-endpoint returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("leak-endpoint did not stop within 20s")
		}
		all := out.String() + l.logs.String()
		for _, k := range keys() {
			if strings.Contains(all, k) {
				t.Error("leak-endpoint's output holds a raw token")
			}
		}
		if keyShape.MatchString(all) {
			t.Error("leak-endpoint's output holds something shaped like a key")
		}
	})
	eventually(t, 20*time.Second, "leak-endpoint listening", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("leak-endpoint exited: %v\n%s", err, redact(l.logs.String()))
		default:
		}
		m := leakURLRE.FindStringSubmatch(out.String())
		if m != nil {
			l.url = m[1]
		}
		return m != nil
	})
	return l
}

type leakAnswer struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// report posts tokens as GitHub would, signed by sig (nil: g's signature
// of the body), and returns the status and body.
func (l *leakEndpoint) report(t *testing.T, g *fakeGitHub, sig func([]byte) string, tokens ...string) (int, string) {
	t.Helper()
	var ms []map[string]string
	for _, tok := range tokens {
		ms = append(ms, map[string]string{"token": tok, "type": "keygate_api_key", "url": "https://github.com/octo/leaky/blob/1a2b/.env", "source": "commit"})
	}
	body, _ := json.Marshal(ms)
	if sig == nil {
		sig = func(b []byte) string { return g.sign(t, b) }
	}
	req, _ := http.NewRequest(http.MethodPost, l.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Github-Public-Key-Identifier", g.id)
	req.Header.Set("Github-Public-Key-Signature", sig(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func labels(t *testing.T, body string, tokens ...string) []string {
	t.Helper()
	var ans []leakAnswer
	if err := json.Unmarshal([]byte(body), &ans); err != nil || len(ans) != len(tokens) {
		t.Fatalf("answer: %v, %d entries for %d tokens: %s", err, len(ans), len(tokens), redact(body))
	}
	var out []string
	for i, a := range ans {
		sum := sha256.Sum256([]byte(tokens[i]))
		if a.TokenHash != hex.EncodeToString(sum[:]) || a.TokenType != "keygate_api_key" {
			t.Errorf("answer %d: %+v", i, a)
		}
		out = append(out, a.Label)
	}
	return out
}

// TestLeakEndpointRevoke: `keygate serve` allows a key (cached for a
// minute); GitHub reports it, with a revoked, an unknown, a checksum-broken
// and a non-keygate token, to `keygate leak-endpoint --revoke`; the answer
// labels them, the live key is revoked with reason "leaked" and the server
// denies it within 2 s. Refused requests (bad signature, replay) revoke
// nothing. On the file store, and on Vault with only the shipped
// leak-endpoint policies.
func TestLeakEndpointRevoke(t *testing.T) {
	for _, store := range []string{"file", "vault"} {
		t.Run(store, func(t *testing.T) {
			var ring keyring
			env := envMap{"KEYGATE_STORE": "file:" + filepath.Join(t.TempDir(), "keys.yaml")}
			if store == "vault" {
				env = vaultEnv(t)
			}
			leaked := ring.add(createKey(t, env, "--tenant", "acme"))
			second := ring.add(createKey(t, env, "--tenant", "acme"))
			earlier := ring.add(createKey(t, env, "--tenant", "acme"))
			mustCLI(t, env, "keys", "revoke", earlier.ID, "--reason", "rotated")
			format, _ := policy.NewFormat("kg")
			unknown, _, _ := format.Generate()
			broken := leaked.Key[:len(leaked.Key)-1] + flip(leaked.Key[len(leaked.Key)-1])
			ring.add(created{Key: unknown})
			ring.add(created{Key: broken})

			epEnv := env
			if store == "vault" { // the endpoint's token: only the shipped policies
				epEnv = leakPolicyEnv(t, env, "keygate-leak-endpoint", "keygate-leak-endpoint-revoke")
			}
			g := newFakeGitHub(t)
			l := startLeakEndpoint(t, epEnv, ring.all, "--public-keys", g.docPath, "--revoke")
			s := serve(t, env, ring.all, "--found-ttl", "1m")
			for _, k := range []created{leaked, second} {
				if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
					t.Fatalf("before the report: %v", o)
				}
			}

			if st, b := l.report(t, g, func([]byte) string { return g.sign(t, []byte("another body")) }, second.Key); st != 401 {
				t.Errorf("badly signed: %d %s", st, redact(b))
			}
			tokens := []string{leaked.Key, earlier.Key, unknown, broken, "ghp_" + strings.Repeat("x", 36)}
			var sig string
			st, body := l.report(t, g, func(b []byte) string { sig = g.sign(t, b); return sig }, tokens...)
			reportedAt := time.Now()
			if st != 200 {
				t.Fatalf("report: %d %s", st, redact(body))
			}
			want := []string{"true_positive", "true_positive", "false_positive", "false_positive", "false_positive"}
			if got := labels(t, body, tokens...); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("labels %v, want %v", got, want)
			}
			took := eventually(t, 2*time.Second, "the leaked key denied", func() bool {
				return s.decide(t, leaked.Key, checkFlags{}).reason == "revoked_key"
			})
			t.Logf("%s store: denied %s after the report was answered (%s since)", store, took.Round(10*time.Millisecond),
				time.Since(reportedAt).Round(10*time.Millisecond))
			if o := s.decide(t, second.Key, checkFlags{}); o.status != 200 {
				t.Errorf("the key in the badly signed report: %v", o)
			}
			for id, reason := range map[string]string{leaked.ID: "leaked", earlier.ID: "rotated"} {
				if show := mustCLI(t, env, "keys", "show", "--json", id); !strings.Contains(show, `"revoked_reason":"`+reason+`"`) {
					t.Errorf("key %s: %s", id, redact(show))
				}
			}
			if st, b := l.report(t, g, func([]byte) string { return sig }, tokens...); st != http.StatusConflict || !strings.Contains(b, "replayed") {
				t.Errorf("replayed: %d %s", st, redact(b))
			}
			logs := l.logs.String()
			for _, w := range []string{`"msg":"leaked key revoked"`, `"key_id":"` + leaked.ID + `"`, `"url":"https://github.com/octo/leaky/blob/1a2b/.env"`,
				`"msg":"leak report refused"`} {
				if !strings.Contains(logs, w) {
					t.Errorf("logs lack %s", w)
				}
			}
		})
	}
}

// leakPolicyEnv is env with VAULT_TOKEN replaced by a token holding only
// the named shipped policies, their paths moved to env's base path.
func leakPolicyEnv(t *testing.T, env envMap, names ...string) envMap {
	t.Helper()
	base := env["KEYGATE_VAULT_BASE_PATH"]
	root := vaulttest.Server(t).Client(t)
	var policies []string
	for _, name := range names {
		text, err := os.ReadFile("../../vault/policies/" + name + ".hcl")
		if err != nil {
			t.Fatal(err)
		}
		moved := strings.ReplaceAll(string(text), "secret/data/keygate/", "secret/data/"+base+"/")
		policies = append(policies, name+"-"+base)
		if err := root.Sys().PutPolicy(name+"-"+base, moved); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies, TTL: "15m"})
	if err != nil {
		t.Fatal(err)
	}
	return env.with("VAULT_TOKEN", sec.Auth.ClientToken)
}

// TestLeakEndpointVaultReadOnly: with only keygate-leak-endpoint.hcl the
// endpoint answers labels; asked to --revoke with that policy alone, Vault
// refuses the write, the endpoint answers 503 (so GitHub retries) and the
// key stays active.
func TestLeakEndpointVaultReadOnly(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	mustCLI(t, env, "pepper", "rotate") // an hmac-sha256 key: the endpoint must read the pepper
	k := ring.add(createKey(t, env, "--tenant", "acme", "--hash", "hmac-sha256"))
	readOnly := leakPolicyEnv(t, env, "keygate-leak-endpoint")
	g := newFakeGitHub(t)

	l := startLeakEndpoint(t, readOnly, ring.all, "--public-keys", g.docPath)
	st, body := l.report(t, g, nil, k.Key)
	if st != 200 || labels(t, body, k.Key)[0] != "true_positive" {
		t.Fatalf("read-only: %d %s", st, redact(body))
	}
	l2 := startLeakEndpoint(t, readOnly, ring.all, "--public-keys", g.docPath, "--revoke")
	if st, body := l2.report(t, g, nil, k.Key); st != http.StatusServiceUnavailable {
		t.Errorf("--revoke without the revoke policy: %d %s", st, redact(body))
	}
	if show := mustCLI(t, env, "keys", "show", "--json", k.ID); !strings.Contains(show, `"status":"active"`) {
		t.Errorf("key: %s", redact(show))
	}
	if !strings.Contains(l2.logs.String(), "permission denied") {
		t.Errorf("the refused write is not logged:\n%s", redact(l2.logs.String()))
	}
}

// TestLeakEndpointFlags: configuration errors, all at once.
func TestLeakEndpointFlags(t *testing.T) {
	_, _, err := cli(t, envMap{"KEYGATE_STORE": "file:/nonexistent"}, "leak-endpoint", "--addr", "0.0.0.0:8443", "--max-tokens", "0", "--tls-cert", "c.pem")
	for _, want := range []string{"--public-keys: required", "--tls-cert and --tls-key", "--max-tokens: 0: must be > 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	_, _, err = cli(t, envMap{"KEYGATE_STORE": "file:/nonexistent"}, "leak-endpoint", "--addr", "0.0.0.0:8443", "--public-keys", "k.json")
	if err == nil || !strings.Contains(err.Error(), "is not loopback") {
		t.Errorf("non-loopback plain HTTP: %v", err)
	}
	store := "file:" + filepath.Join(t.TempDir(), "keys.yaml")
	mustCLI(t, envMap{"KEYGATE_STORE": store}, "keys", "create", "--tenant", "a")
	_, _, err = cli(t, envMap{"KEYGATE_STORE": store}, "leak-endpoint", "--public-keys", filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "--public-keys") {
		t.Errorf("missing key document: %v", err)
	}
}

// TestLeakEndpointDocs: docs/leaks.md's flag table is what `keygate
// leak-endpoint --help-markdown` prints.
func TestLeakEndpointDocs(t *testing.T) {
	want := mustCLI(t, envMap{}, "leak-endpoint", "--help-markdown")
	data, err := os.ReadFile("../../docs/leaks.md")
	if err != nil {
		t.Fatal(err)
	}
	begin := "<!-- generated by `keygate leak-endpoint --help-markdown` -->\n"
	end := "<!-- end of `keygate leak-endpoint --help-markdown` -->"
	doc := string(data)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("docs/leaks.md lacks the lines %q ... %q", begin, end)
	}
	if got := doc[i+len(begin) : j]; got != want {
		t.Errorf("docs/leaks.md's leak-endpoint flag table differs from --help-markdown:\n%s", want)
	}
}
