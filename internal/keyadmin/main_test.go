package keyadmin_test

import (
	"context"
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

// t0 is the tests' "now".
var t0 = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fixture is a Service on a real file store in a temp dir.
type fixture struct {
	svc   *keyadmin.Service
	store *filestore.Store
	path  string
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	s, err := filestore.OpenOrCreate(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, path: path, clock: &clock{t: t0}}
	f.svc = f.service(t, keyadmin.Config{}, s)
	return f
}

// service is a Service on store (f's store, or one wrapping it) with f's clock.
func (f *fixture) service(t *testing.T, cfg keyadmin.Config, store keyadmin.Store) *keyadmin.Service {
	t.Helper()
	cfg.Now = f.clock.Now
	svc, err := keyadmin.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// issue issues a key with fields, at the clock's time.
func (f *fixture) issue(t *testing.T, fields keyadmin.Fields) *keyadmin.Issued {
	t.Helper()
	k, err := f.svc.Issue(context.Background(), fields)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return k
}

// handEdit appends lines to the key file's keys section, as a person would.
func (f *fixture) handEdit(t *testing.T, id, record string) {
	t.Helper()
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "keys: {}\n", "keys:\n", 1)
	s = strings.Replace(s, "keys:\n", "keys:\n  "+id+": "+record+"\n", 1)
	if err := os.WriteFile(f.path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// count is how many keys the store lists.
func (f *fixture) count(t *testing.T) int {
	t.Helper()
	ids, err := f.store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}
