package leakendpoint

import (
	"context"
	"crypto/elliptic"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyServer serves GitHub's key document over loopback HTTP, with an
// ETag, counting reads.
type keyServer struct {
	mu    sync.Mutex
	doc   []byte
	gen   int
	reads atomic.Int32
	srv   *httptest.Server
}

func newKeyServer(t *testing.T, doc []byte) *keyServer {
	t.Helper()
	k := &keyServer{doc: doc}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.reads.Add(1)
		k.mu.Lock()
		doc, etag := k.doc, fmt.Sprintf(`"v%d"`, k.gen)
		k.mu.Unlock()
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *keyServer) set(doc []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.doc = doc
	k.gen++
}

// TestKeyRotation: GitHub rotates its signing key: a report signed with
// the new key names an identifier the endpoint has not seen, which makes
// it re-read the key document (over HTTP) and accept the report; once the
// old key is gone from the document, reports signed with it are refused.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	tk := newTokens(t, f)
	old, next := f.github, newSigner(t, "gh-key-2", elliptic.P256())
	ks := newKeyServer(t, keyDoc(t, old))
	cfg := DefaultKeysConfig(ks.srv.URL + "/meta/public_keys/secret_scanning")
	cfg.MinRefresh = 0
	cfg.Log = slog.New(slog.NewJSONHandler(f.log, nil))
	pub, err := LoadPublicKeys(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, DefaultConfig(), f.keys, pub)

	ks.set(keyDoc(t, old, next)) // GitHub adds the new key, then signs with it
	f.github = next
	if st, b := f.post(t, reportBody(t, tk.active.RawKey), nil); st != 200 {
		t.Fatalf("signed with the new key: %d %s", st, b)
	}
	ks.set(keyDoc(t, next)) // and retires the old one
	f.github = old
	if st, b := f.post(t, reportBody(t, tk.revoked.RawKey), nil); st != 200 {
		t.Errorf("the old key before a refresh: %d %s", st, b)
	}
	if err := pubRead(pub); err != nil {
		t.Fatal(err)
	}
	if st, b := f.post(t, reportBody(t, tk.unknown), nil); st != 401 || !strings.Contains(b, "unknown public key identifier") {
		t.Errorf("the retired key after a refresh: %d %s", st, b)
	}
	if !strings.Contains(f.log.String(), `"msg":"public keys re-read for an unknown key identifier"`) {
		t.Error("the re-read is not logged")
	}
}

func pubRead(p *PublicKeys) error {
	p.load.Lock()
	defer p.load.Unlock()
	return p.read(context.Background())
}

// TestUnknownKeyRateLimit: requests naming unknown identifiers re-read the
// document at most once per MinRefresh, however many there are.
func TestUnknownKeyRateLimit(t *testing.T) {
	gh := newSigner(t, "gh-key-1", elliptic.P256())
	ks := newKeyServer(t, keyDoc(t, gh))
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	cfg := DefaultKeysConfig(ks.srv.URL)
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pub, err := LoadPublicKeys(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := pub.Lookup(context.Background(), fmt.Sprintf("forged-%d", i)); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("forged id: %v", err)
			}
		})
	}
	wg.Wait()
	if n := ks.reads.Load(); n != 1 {
		t.Errorf("%d reads within MinRefresh, want 1 (the first load)", n)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	pub.Lookup(context.Background(), "forged-again")
	if n := ks.reads.Load(); n != 2 {
		t.Errorf("%d reads after MinRefresh, want 2", n)
	}
	if k, err := pub.Lookup(context.Background(), gh.id); err != nil || k == nil {
		t.Errorf("the known key: %v", err)
	}
}

// TestRunRefresh: Run re-reads the document every Refresh (conditionally:
// an unchanged document is a 304 and keeps the keys), and a failed read
// keeps the keys known.
func TestRunRefresh(t *testing.T) {
	a, b := newSigner(t, "a", elliptic.P256()), newSigner(t, "b", elliptic.P256())
	ks := newKeyServer(t, keyDoc(t, a))
	cfg := DefaultKeysConfig(ks.srv.URL)
	cfg.Refresh = 10 * time.Millisecond
	pub, err := LoadPublicKeys(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, 2*time.Second, "a few 304 refreshes", func() bool { return ks.reads.Load() > 3 })
	if ids := pub.IDs(); len(ids) != 1 || ids[0] != "a" {
		t.Errorf("after 304s: %v", ids)
	}
	ks.set([]byte(`{"public_keys": []}`)) // a broken document is not applied
	n := ks.reads.Load()
	eventually(t, 2*time.Second, "a refresh of the broken document", func() bool { return ks.reads.Load() > n+1 })
	if ids := pub.IDs(); len(ids) != 1 || ids[0] != "a" {
		t.Errorf("after a broken document: %v", ids)
	}
	ks.set(keyDoc(t, b))
	eventually(t, 2*time.Second, "key b", func() bool { ids := pub.IDs(); return len(ids) == 1 && ids[0] == "b" })
}

// TestParsePublicKeys: GitHub's document; keys that are not ECDSA P-256
// are kept as unusable (a request naming one is refused with the reason);
// a document without a usable key is an error.
func TestParsePublicKeys(t *testing.T) {
	p256, p384 := newSigner(t, "good", elliptic.P256()), newSigner(t, "p384", elliptic.P384())
	keys, err := ParsePublicKeys(keyDoc(t, p256, p384))
	if err != nil {
		t.Fatal(err)
	}
	if keys["good"].bad != nil || keys["good"].key == nil {
		t.Errorf("the P-256 key: %v", keys["good"].bad)
	}
	if !errors.Is(keys["p384"].bad, ErrUnusableKey) {
		t.Errorf("the P-384 key: %v", keys["p384"].bad)
	}
	for _, doc := range []string{``, `[]`, `{}`, `{"public_keys": []}`, `{"public_keys": [{"key_identifier": "x", "key": "junk"}]}`,
		string(keyDoc(t, p384))} {
		if _, err := ParsePublicKeys([]byte(doc)); err == nil {
			t.Errorf("%.40q: no error", doc)
		}
	}
	if _, err := LoadPublicKeys(context.Background(), DefaultKeysConfig("/nonexistent/keys.json")); err == nil {
		t.Error("a missing file loads")
	}
	if _, err := LoadPublicKeys(context.Background(), KeysConfig{}); err == nil || !strings.Contains(err.Error(), "public-keys: required") {
		t.Errorf("no source: %v", err)
	}
}

// TestWrongCurveKey: a report naming a P-384 key of the document is
// refused, with the reason, even if signed by that key.
func TestWrongCurveKey(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	p384 := newSigner(t, "p384", elliptic.P384())
	ks := newKeyServer(t, keyDoc(t, f.github, p384))
	pub, err := LoadPublicKeys(context.Background(), DefaultKeysConfig(ks.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, DefaultConfig(), f.keys, pub)
	f.github = p384
	if st, b := f.post(t, reportBody(t, "x"), nil); st != 401 || !strings.Contains(b, "not an ECDSA P-256 key") {
		t.Errorf("P-384: %d %s", st, b)
	}
}
