package leakscan

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// storeFixture is a keyadmin.Service on a real file store.
type storeFixture struct {
	svc   *keyadmin.Service
	store *filestore.Store
	now   time.Time
}

func newStoreFixture(t *testing.T) *storeFixture {
	t.Helper()
	s, err := filestore.OpenOrCreate(context.Background(), filepath.Join(t.TempDir(), "keys.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &storeFixture{store: s, now: time.Now().UTC()}
	if f.svc, err = keyadmin.New(keyadmin.Config{Now: func() time.Time { return f.now }}, s); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *storeFixture) issue(t *testing.T, fields keyadmin.Fields) *keyadmin.Issued {
	t.Helper()
	tenant := "acme"
	fields.Tenant = &tenant
	k, err := f.svc.Issue(context.Background(), fields)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (f *storeFixture) verifier(t *testing.T, keys Keys) *Verifier {
	t.Helper()
	p, err := f.store.Peppers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(keys, p, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerify: each found key gets its status from the store: active,
// revoked, expired; unknown when no record has its id, and when a record
// has its id but the hash does not verify (a forged string with a real id
// and a valid checksum is not the real key). Revoke revokes only the
// active ones, once per key, with reason "leaked".
func TestVerify(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t)
	active := f.issue(t, keyadmin.Fields{})
	revoked := f.issue(t, keyadmin.Fields{})
	if _, err := f.svc.Revoke(ctx, revoked.ID, "rotated"); err != nil {
		t.Fatal(err)
	}
	expired := f.issue(t, keyadmin.Fields{ExpiresIn: time.Hour})
	never := genKey(t, "kg")
	forged := makeKey("kg", active.ID+strings.Repeat("Z", policy.SecretLen))
	other := genKey(t, "sk")

	text := strings.Join([]string{active.RawKey, revoked.RawKey, expired.RawKey, never, forged, other, active.RawKey}, "\n")
	found, _, err := New(Config{}).Reader(strings.NewReader(text), "in")
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Hour)
	wantStatus := []Status{Active, Revoked, Expired, Unknown, Unknown, Unknown, Active}
	if len(found) != len(wantStatus) {
		t.Fatalf("%d findings, want %d", len(found), len(wantStatus))
	}
	for _, fd := range found {
		if fd.Status != Unchecked || !fd.Live() {
			t.Errorf("%s: before Verify, want unchecked and live", fd)
		}
	}

	counting := &countingKeys{Keys: f.svc}
	v := f.verifier(t, counting)
	v.Verify(ctx, found)
	for i, fd := range found {
		if fd.Status != wantStatus[i] || fd.StatusErr != nil {
			t.Errorf("line %d: status %s (%v), want %s", fd.Line, fd.Status, fd.StatusErr, wantStatus[i])
		}
	}
	if counting.gets != 6 {
		t.Errorf("%d store reads for 6 distinct keys", counting.gets)
	}

	if n := v.Revoke(ctx, found); n != 1 {
		t.Errorf("revoked %d keys, want 1", n)
	}
	for i, fd := range found {
		if want := wantStatus[i] == Active; fd.Revoked != want || fd.RevokeErr != nil {
			t.Errorf("line %d: revoked %v (%v), want %v", fd.Line, fd.Revoked, fd.RevokeErr, want)
		}
	}
	if counting.revokes != 1 {
		t.Errorf("%d revocations, want 1", counting.revokes)
	}
	k, err := f.svc.Get(ctx, active.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Record.Status != policy.StatusRevoked || k.Record.RevokedReason != RevokeReason {
		t.Errorf("after Revoke: status %q reason %q", k.Record.Status, k.Record.RevokedReason)
	}
	k, err = f.svc.Get(ctx, revoked.ID)
	if err != nil || k.Record.RevokedReason != "rotated" {
		t.Errorf("a revoked key was revoked again: reason %q (%v)", k.Record.RevokedReason, err)
	}

	// Scanned again, the key is now revoked: nothing is live.
	v.Verify(ctx, found)
	for _, fd := range found {
		if fd.Live() {
			t.Errorf("%s: still live after Revoke", fd)
		}
	}
}

// TestVerifyStoreErrors: a store that cannot answer gives status error,
// with the reason, for that key; a failed revocation is reported on it.
func TestVerifyStoreErrors(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t)
	active := f.issue(t, keyadmin.Fields{})
	found, _, err := New(Config{}).Reader(strings.NewReader(active.RawKey), "in")
	if err != nil {
		t.Fatal(err)
	}
	broken := errors.New("store unreachable")
	f.verifier(t, &failingKeys{Keys: f.svc, get: broken}).Verify(ctx, found)
	if found[0].Status != Error || !errors.Is(found[0].StatusErr, broken) || found[0].Live() {
		t.Errorf("status %s (%v), want error", found[0].Status, found[0].StatusErr)
	}
	v := f.verifier(t, &failingKeys{Keys: f.svc, revoke: broken})
	v.Verify(ctx, found)
	if n := v.Revoke(ctx, found); n != 0 || !errors.Is(found[0].RevokeErr, broken) || found[0].Revoked {
		t.Errorf("revoked %d, err %v", n, found[0].RevokeErr)
	}
}

type countingKeys struct {
	Keys
	gets, revokes int
}

func (c *countingKeys) Get(ctx context.Context, id string) (*keyadmin.Key, error) {
	c.gets++
	return c.Keys.Get(ctx, id)
}

func (c *countingKeys) Revoke(ctx context.Context, id, reason string) (*keyadmin.Changed, error) {
	c.revokes++
	return c.Keys.Revoke(ctx, id, reason)
}

type failingKeys struct {
	Keys
	get, revoke error
}

func (f *failingKeys) Get(ctx context.Context, id string) (*keyadmin.Key, error) {
	if f.get != nil {
		return nil, f.get
	}
	return f.Keys.Get(ctx, id)
}

func (f *failingKeys) Revoke(ctx context.Context, id, reason string) (*keyadmin.Changed, error) {
	if f.revoke != nil {
		return nil, f.revoke
	}
	return f.Keys.Revoke(ctx, id, reason)
}
