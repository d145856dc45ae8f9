package leakendpoint

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// signer is one of GitHub's signing keys, made by the test.
type signer struct {
	id  string
	key *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string, curve elliptic.Curve) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{id: id, key: k}
}

// sign is GitHub's Github-Public-Key-Signature for body.
func (s signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func (s signer) pem(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// keyDoc is GitHub's key document listing signers (the last is current).
func keyDoc(t testing.TB, signers ...signer) []byte {
	t.Helper()
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	var doc struct {
		PublicKeys []entry `json:"public_keys"`
	}
	for i, s := range signers {
		doc.PublicKeys = append(doc.PublicKeys, entry{s.id, s.pem(t), i == len(signers)-1})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncBuffer collects a log written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is an endpoint on a real file store, served over loopback HTTP,
// with a test GitHub signing key.
type fixture struct {
	svc     *keyadmin.Service
	store   *filestore.Store
	keys    Store
	github  signer
	srv     *httptest.Server
	ep      *Endpoint
	log     *syncBuffer
	secrets []string // every token the test made, for the no-raw-token checks
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	s, err := filestore.OpenOrCreate(context.Background(), filepath.Join(t.TempDir(), "keys.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, log: &syncBuffer{}, github: newSigner(t, "gh-key-1", elliptic.P256())}
	if f.svc, err = keyadmin.New(keyadmin.Config{}, s); err != nil {
		t.Fatal(err)
	}
	f.keys = Store{Keys: f.svc, Peppers: s.Peppers}
	docPath := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(docPath, keyDoc(t, f.github), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKeys(context.Background(), DefaultKeysConfig(docPath))
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, cfg, f.keys, pub)
	t.Cleanup(func() { f.checkNoSecrets(t, f.log.String(), "the log") })
	return f
}

// serve (re)starts the endpoint over store with pub.
func (f *fixture) serve(t *testing.T, cfg Config, store Store, pub *PublicKeys) {
	t.Helper()
	cfg.Log = slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ep, err := New(cfg, store, pub)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv != nil {
		f.srv.Close()
	}
	f.ep, f.srv = ep, httptest.NewServer(ep) // 127.0.0.1
	t.Cleanup(f.srv.Close)
}

func (f *fixture) issue(t *testing.T, fields keyadmin.Fields) *keyadmin.Issued {
	t.Helper()
	tenant := "acme"
	fields.Tenant = &tenant
	k, err := f.svc.Issue(context.Background(), fields)
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, k.RawKey)
	return k
}

func (f *fixture) status(t *testing.T, id string) (status, reason string) {
	t.Helper()
	k, err := f.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k.Record.Status, k.Record.RevokedReason
}

// reportBody is a report of tokens, one "keygate_api_key" match each.
func reportBody(t testing.TB, tokens ...string) []byte {
	t.Helper()
	ms := make([]Match, len(tokens))
	for i, tok := range tokens {
		ms[i] = Match{Token: tok, Type: "keygate_api_key", URL: "https://github.com/octo/repo/blob/abc/app.env", Source: "content"}
	}
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body with the given headers (nil: signed by f.github) and
// returns the status and response body.
func (f *fixture) post(t *testing.T, body []byte, hdr http.Header) (int, string) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{HeaderKeyID: {f.github.id}, HeaderSignature: {f.github.sign(t, body)}}
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f.checkNoSecrets(t, string(out), "a response")
	return resp.StatusCode, string(out)
}

func (f *fixture) checkNoSecrets(t *testing.T, s, where string) {
	t.Helper()
	for _, k := range f.secrets {
		if strings.Contains(s, k) {
			t.Errorf("%s holds a raw token", where)
		}
	}
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hexString(sum[:])
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// eventually polls cond until it holds, failing after bound.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
