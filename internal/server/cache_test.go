package server

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/policy"
)

// fileServer is a Check server on a file store holding two active keys,
// with evictChanges wired as Deps.OnChange wires it.
type fileServer struct {
	*keyFile
	srv     *extauthz.Server
	peppers <-chan struct{}
}

func newFileServer(t *testing.T, burst int) *fileServer {
	t.Helper()
	f := &fileServer{keyFile: newKeyFile(t, 2)}
	cfg := extauthz.DefaultConfig()
	cfg.FoundTTL, cfg.StoreReadRate, cfg.UnknownKeyRate = time.Hour, -1, -1
	hasher, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	var err error
	if f.srv, err = extauthz.NewServer(cfg, f.fs, hasher, discard); err != nil {
		t.Fatal(err)
	}
	onChange := func(apply func(StoreChange)) {
		f.fs.OnChange(func(c filestore.Change) { apply(StoreChange{IDs: c.IDs, Peppers: c.Peppers}) })
	}
	f.peppers = evictChanges(onChange, f.srv, burst, discard)
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
	resp, err := f.srv.Check(context.Background(), checkRequest(f.raw[i]))
	if err != nil {
		t.Fatal(err)
	}
	return reason(resp)
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

	if !f.srv.CacheStats().ChangeFeed {
		t.Error("the file store's reports are not a healthy change feed")
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
	if err := os.WriteFile(f.path, append([]byte(pepper), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.peppers:
	case <-time.After(10 * time.Second):
		t.Fatal("a pepper edit did not wake the pepper reload within 10s")
	}
}

// A store without change reports gets no channel.
func TestEvictChangesNoReports(t *testing.T) {
	if ch := evictChanges(nil, nil, 1, discard); ch != nil {
		t.Error("a channel for a store that reports nothing")
	}
}
