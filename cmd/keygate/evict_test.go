package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/policy"
)

// fileServer is a Check server on a file store holding two active keys,
// with evictChanges wired as serve wires it.
type fileServer struct {
	path    string
	fs      *filestore.Store
	srv     *extauthz.Server
	raw     []string // raw keys, ids alike
	ids     []string
	peppers <-chan struct{}
}

func newFileServer(t *testing.T, burst int) *fileServer {
	t.Helper()
	ctx := context.Background()
	f := &fileServer{path: filepath.Join(t.TempDir(), "keys.yaml")}
	var err error
	if f.fs, err = filestore.OpenOrCreate(ctx, f.path, nil); err != nil {
		t.Fatal(err)
	}
	format, _ := policy.NewFormat(policy.DefaultPrefix)
	hasher, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	for range 2 {
		raw, id, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		rec := &policy.Record{Hash: hasher.Hash(raw).String(), Tenant: "t", Status: policy.StatusActive}
		if err := f.fs.Create(ctx, id, rec); err != nil {
			t.Fatal(err)
		}
		f.raw, f.ids = append(f.raw, raw), append(f.ids, id)
	}
	cfg := extauthz.DefaultConfig()
	cfg.FoundTTL, cfg.StoreReadRate, cfg.UnknownKeyRate = time.Hour, -1, -1
	log := slog.New(slog.DiscardHandler)
	if f.srv, err = extauthz.NewServer(cfg, f.fs, hasher, log); err != nil {
		t.Fatal(err)
	}
	f.peppers = evictChanges(&openedStore{keyStore: f.fs}, f.srv, burst, log)
	for i := range f.raw {
		if got := f.check(t, i); got != "allowed" {
			t.Fatalf("key %d before any change: %s", i, got)
		}
	}
	return f
}

// check returns key i's decision: "allowed" or the deny reason.
func (f *fileServer) check(t *testing.T, i int) string {
	t.Helper()
	cf := checkFlags{method: "GET", path: "/", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: f.raw[i]}
	req, err := cf.request(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return toOutcome(resp).reason
}

func (f *fileServer) revoke(t *testing.T, i int) {
	t.Helper()
	ctx := context.Background()
	rec, v, err := f.fs.Get(ctx, f.ids[i])
	if err != nil {
		t.Fatal(err)
	}
	rec.Status = policy.StatusRevoked
	if err := f.fs.Update(ctx, f.ids[i], rec, v); err != nil {
		t.Fatal(err)
	}
}

// TestEvictChanges: a changed id is evicted (the other stays cached); with
// more changed ids than the store read burst, the cache is expired
// instead, which drops nothing.
func TestEvictChanges(t *testing.T) {
	f := newFileServer(t, 1)
	f.revoke(t, 0)
	if got := f.check(t, 0); got != "revoked_key" {
		t.Errorf("revoked key: %s", got)
	}
	if got := f.check(t, 1); got != "allowed" {
		t.Errorf("untouched key: %s", got)
	}
	if st := f.srv.CacheStats(); st.Evictions != 1 {
		t.Errorf("%d evictions, want 1", st.Evictions)
	}

	f = newFileServer(t, 0)
	f.revoke(t, 0)
	if got := f.check(t, 0); got != "revoked_key" {
		t.Errorf("over the burst: revoked key: %s", got)
	}
	if st := f.srv.CacheStats(); st.Evictions != 0 || st.Records != 2 {
		t.Errorf("over the burst: %+v, want 2 records and no evictions (expired, not dropped)", st)
	}
}

// TestEvictChangesPeppers: a pepper edit in the file wakes the pepper
// reload.
func TestEvictChangesPeppers(t *testing.T) {
	f := newFileServer(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.fs.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	pepper := "pepper: {current: 1, versions: {1: " + strings.Repeat("A", 43) + "=}}\n"
	if err := writeFileBytes(f.path, append([]byte(pepper), data...)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.peppers:
	case <-time.After(10 * time.Second):
		t.Fatal("a pepper edit did not wake the pepper reload within 10s")
	}
}
