package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

func newRecord(tenant string) *policy.Record {
	return &policy.Record{Hash: hashA, Tenant: tenant, Status: policy.StatusActive, Scopes: []string{"orders:read"}}
}

// testID returns a distinct valid key id for i.
func testID(i int) string { return fmt.Sprintf("K%011d", i) }

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open: got %v, want fs.ErrNotExist", err)
	}
}

func TestOpenDocumentError(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"yaml syntax", "keys:\n  " + idA + ": {tenant: t\n", "parse: yaml:"},
		{"keys missing", "pepper: {current: 1, versions: {1: " + pepper1 + "}}\n", "keys: required"},
		{"keys not a mapping", "keys: [" + idA + "]\n", "keys: want a mapping"},
		{"bad pepper", "pepper: {current: 2, versions: {1: " + pepper1 + "}}\nkeys: {}\n", `pepper field "current"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newFile(t, tt.data)
			_, err := Open(path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: got %v, want an error naming the path and %q", err, tt.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	s, _ := openFile(t, validFile)
	tests := []struct {
		id     string
		tenant string // "" means not found
	}{
		{idA, "acme"},
		{idB, "globex"},
		{"0000000000zz", ""},
		{"not-an-id", ""},
		{"", ""},
	}
	for _, tt := range tests {
		rec, err := s.Lookup(context.Background(), tt.id)
		switch {
		case tt.tenant == "" && !errors.Is(err, policy.ErrKeyNotFound):
			t.Errorf("Lookup(%q): got %v, %v; want ErrKeyNotFound", tt.id, rec, err)
		case tt.tenant != "" && (err != nil || rec.Tenant != tt.tenant):
			t.Errorf("Lookup(%q): got %+v, %v; want tenant %s", tt.id, rec, err, tt.tenant)
		}
	}
}

func TestOpenOrCreate(t *testing.T) {
	for _, name := range []string{"keys.yaml", "keys.json"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), name)
			s, err := OpenOrCreate(ctx, path, nil)
			if err != nil {
				t.Fatalf("OpenOrCreate: %v", err)
			}
			checkMode(t, path, 0o600)
			if ids, err := s.List(ctx); err != nil || len(ids) != 0 {
				t.Fatalf("List = %v, %v; want empty", ids, err)
			}
			if err := s.Create(ctx, idA, newRecord("acme")); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if isJSON := strings.HasPrefix(string(data), "{"); isJSON != strings.HasSuffix(name, ".json") {
				t.Errorf("%s written as:\n%s", name, data)
			}
			s2, err := OpenOrCreate(ctx, path, nil) // existing file: opened, not replaced
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s2.Lookup(ctx, idA); err != nil {
				t.Errorf("reopened store lost %s: %v", idA, err)
			}
		})
	}
}

func TestCreateGetUpdate(t *testing.T) {
	ctx := context.Background()
	s, path := openFile(t, validFile)
	steps := []struct {
		name string
		do   func() error
		want error // nil, a sentinel, or errAny
	}{
		{"create", func() error { return s.Create(ctx, "NewKey000001", newRecord("initech")) }, nil},
		{"create again", func() error { return s.Create(ctx, "NewKey000001", newRecord("x")) }, policy.ErrKeyExists},
		{"create bad id", func() error { return s.Create(ctx, "bad/id", newRecord("x")) }, errAny},
		{"create invalid record", func() error { return s.Create(ctx, "NewKey000002", &policy.Record{Tenant: "x"}) }, policy.ErrInvalidRecord},
		{"create nil record", func() error { return s.Create(ctx, "NewKey000002", nil) }, policy.ErrInvalidRecord},
		{"create with unknown pepper", func() error {
			r := newRecord("x")
			r.Hash = strings.Replace(hashB, ":v1:", ":v9:", 1)
			return s.Create(ctx, "NewKey000002", r)
		}, policy.ErrInvalidRecord},
		{"update at version 1", func() error { return s.Update(ctx, "NewKey000001", newRecord("initrode"), 1) }, nil},
		{"update stale version", func() error { return s.Update(ctx, "NewKey000001", newRecord("x"), 1) }, policy.ErrConflict},
		{"update future version", func() error { return s.Update(ctx, "NewKey000001", newRecord("x"), 3) }, policy.ErrConflict},
		{"update hand-versioned key", func() error { return s.Update(ctx, idB, newRecord("globex2"), 4) }, nil},
		{"update missing key", func() error { return s.Update(ctx, "NewKey000009", newRecord("x"), 1) }, policy.ErrKeyNotFound},
		{"update invalid record", func() error {
			return s.Update(ctx, "NewKey000001", &policy.Record{Hash: hashA, Tenant: "t", Status: "paused"}, 2)
		}, policy.ErrInvalidRecord},
		{"create to delete", func() error { return s.Create(ctx, "NewKey000003", newRecord("x")) }, nil},
		{"delete", func() error { return s.Delete(ctx, "NewKey000003") }, nil},
		{"delete again", func() error { return s.Delete(ctx, "NewKey000003") }, policy.ErrKeyNotFound},
		{"delete missing key", func() error { return s.Delete(ctx, "NewKey000009") }, policy.ErrKeyNotFound},
		{"delete bad id", func() error { return s.Delete(ctx, "bad/id") }, errAny},
	}
	for _, st := range steps {
		err := st.do()
		switch {
		case st.want == nil && err != nil, st.want == errAny && err == nil,
			st.want != nil && st.want != errAny && !errors.Is(err, st.want):
			t.Fatalf("%s: got %v, want %v", st.name, err, st.want)
		}
	}
	checkAfterWrites(t, s, path)
}

// checkAfterWrites checks the state TestCreateGetUpdate's steps leave.
func checkAfterWrites(t *testing.T, s *Store, path string) {
	t.Helper()
	ctx := context.Background()
	checkGet(t, s, "NewKey000001", "initrode", 2)
	checkGet(t, s, idB, "globex2", 5)
	checkGet(t, s, idA, "acme", 1)
	for _, id := range []string{"NewKey000002", "NewKey000003"} {
		if _, _, err := s.Get(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
			t.Errorf("Get %s after failed creates and deletes: %v, want ErrKeyNotFound", id, err)
		}
		if _, err := s.Lookup(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
			t.Errorf("Lookup %s: %v, want ErrKeyNotFound", id, err)
		}
	}
	if rec, err := s.Lookup(ctx, "NewKey000001"); err != nil || rec.Tenant != "initrode" {
		t.Errorf("Lookup after writes: %+v, %v", rec, err)
	}
	ids, err := s.List(ctx)
	if want := []string{idA, idB, "NewKey000001"}; err != nil || !slices.Equal(ids, want) {
		t.Errorf("List = %v, %v; want %v", ids, err, want)
	}
	if p, err := s.Peppers(ctx); err != nil || p.Current != 1 || len(p.Versions[1]) != policy.MinPepperLen {
		t.Errorf("Peppers = %+v, %v", p, err)
	}
	reopened, err := Open(path, nil) // the written file loads, versions included
	if err != nil {
		t.Fatal(err)
	}
	checkGet(t, reopened, "NewKey000001", "initrode", 2)
}

var errAny = errors.New("any error")

func checkGet(t *testing.T, s *Store, id, tenant string, version int) {
	t.Helper()
	rec, v, err := s.Get(context.Background(), id)
	if err != nil || rec.Tenant != tenant || v != version {
		t.Errorf("Get(%s) = %+v, %d, %v; want tenant %s at version %d", id, rec, v, err, tenant, version)
	}
}

func TestCreateLeavesCallerRecordAlone(t *testing.T) {
	s, _ := openFile(t, "keys: {}\n")
	rec := newRecord("acme")
	if err := s.Create(context.Background(), idA, rec); err != nil {
		t.Fatal(err)
	}
	rec.Scopes[0] = "changed"
	got, _ := s.Lookup(context.Background(), idA)
	if got.Scopes[0] != "orders:read" {
		t.Errorf("snapshot shares the caller's record: scopes %v", got.Scopes)
	}
}

func TestConcurrentCreates(t *testing.T) {
	const n = 40
	tests := []struct {
		name   string
		stores int // Store instances on the same path, as separate processes would have
	}{
		{"one store", 1},
		{"two stores", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := newFile(t, "keys: {}\n")
			stores := make([]*Store, tt.stores)
			for i := range stores {
				var err error
				if stores[i], err = Open(path, nil); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() { errs <- stores[i%len(stores)].Create(ctx, testID(i), newRecord("t")) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			ids, err := stores[0].List(ctx)
			if err != nil || len(ids) != n {
				t.Fatalf("List: %d ids, %v; want %d", len(ids), err, n)
			}
		})
	}
}

// TestConcurrentUpdates checks check-and-set across two Stores: every
// read-modify-write lands exactly once, retrying on ErrConflict.
func TestConcurrentUpdates(t *testing.T) {
	const n = 20
	ctx := context.Background()
	path := newFile(t, "keys:\n  "+idA+": {hash: "+hashA+", tenant: t, status: active}\n")
	s1, err1 := Open(path, nil)
	s2, err2 := Open(path, nil)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range n {
		s := []*Store{s1, s2}[i%2]
		wg.Go(func() {
			for {
				rec, v, err := s.Get(ctx, idA)
				if err != nil {
					t.Error(err)
					return
				}
				rec.Scopes = append(rec.Scopes, fmt.Sprintf("s%d", i))
				err = s.Update(ctx, idA, rec, v)
				if !errors.Is(err, policy.ErrConflict) {
					if err != nil {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	rec, v, err := s1.Get(ctx, idA)
	if err != nil || v != n+1 || len(rec.Scopes) != n {
		t.Fatalf("after %d updates: version %d, %d scopes, %v", n, v, len(rec.Scopes), err)
	}
}

func TestWriteWaitsForLock(t *testing.T) {
	s, path := openFile(t, "keys: {}\n")
	unlock, err := lockFile(context.Background(), path+".lock") // another process
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Create(ctx, idA, newRecord("t")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create while locked: got %v, want DeadlineExceeded", err)
	}
	unlock()
	if err := s.Create(context.Background(), idA, newRecord("t")); err != nil {
		t.Fatalf("Create after unlock: %v", err)
	}
}

func TestFileMode(t *testing.T) {
	path := newFile(t, "keys: {}\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	s, err := Open(path, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "want mode 0600") {
		t.Errorf("no warning for a 0644 key file; log:\n%s", logs)
	}
	if err := s.Create(context.Background(), idA, newRecord("t")); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)
	checkMode(t, path+".lock", 0o600)
	checkNoTempFiles(t, path)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

func checkNoTempFiles(t *testing.T, path string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp-*"))
	if err != nil || len(matches) != 0 {
		t.Errorf("temp files left behind: %v %v", matches, err)
	}
}

func TestFailedWriteKeepsFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store, path string)
	}{
		{"rename fails", func(t *testing.T, s *Store, path string) {
			s.rename = func(string, string) error { return errors.New("injected rename failure") }
		}},
		{"directory read-only", func(t *testing.T, s *Store, path string) {
			if os.Geteuid() == 0 {
				t.Skip("root ignores directory permissions")
			}
			dir := filepath.Dir(path)
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openFile(t, validFile)
			if _, err := os.Stat(path + ".lock"); err != nil { // the lock file exists before the directory is locked down
				unlock, err := lockFile(context.Background(), path+".lock")
				if err != nil {
					t.Fatal(err)
				}
				unlock()
			}
			tt.setup(t, s, path)
			if err := s.Create(context.Background(), "NewKey000001", newRecord("t")); err == nil {
				t.Fatal("Create succeeded, want a write error")
			}
			if data, _ := os.ReadFile(path); string(data) != validFile {
				t.Errorf("file changed by a failed write:\n%s", data)
			}
			if _, err := s.Lookup(context.Background(), "NewKey000001"); !errors.Is(err, policy.ErrKeyNotFound) {
				t.Errorf("Lookup serves a record that was never written: %v", err)
			}
			checkNoTempFiles(t, path)
		})
	}
}
