package filestore

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// startWatch runs s.Watch until the test ends and checks that it returns nil.
func startWatch(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, 5*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v, want nil", err)
		}
	})
}

func found(s *Store, id string) func() bool {
	return func() bool {
		_, err := s.Lookup(context.Background(), id)
		return err == nil
	}
}

func TestWatchReloads(t *testing.T) {
	path := newFile(t, validFile)
	logs := &logBuffer{}
	s, err := Open(path, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, s)

	const newID = "NewKey000001"
	edited := strings.Replace(validFile, "keys:\n", "keys:\n  "+newID+": {hash: "+hashA+", tenant: new, status: active}\n", 1)
	writeTestFile(t, path, edited)
	eventually(t, "the new key to be served", found(s, newID))
	eventually(t, "the reload to be logged with the key count", func() bool {
		return strings.Contains(logs.String(), `msg="key file reloaded"`) && strings.Contains(logs.String(), "keys=3")
	})

	// A YAML syntax error: nothing in the edit is applied, not even the
	// valid change to idA.
	broken := strings.Replace(edited, "tenant: acme", "tenant: acmf", 1) + "  " + newID + "x: [\n"
	writeTestFile(t, path, broken)
	eventually(t, "the broken file to be logged", func() bool { return strings.Contains(logs.String(), "key file invalid") })
	log := logs.String()
	if !strings.Contains(log, "parse: yaml:") {
		t.Errorf("invalid file logged without the YAML error:\n%s", log)
	}
	if strings.Contains(log, pepper1) || strings.Contains(log, hashA[7:]) {
		t.Errorf("log contains key material:\n%s", log)
	}
	if rec, err := s.Lookup(context.Background(), newID); err != nil || rec.Tenant != "new" {
		t.Errorf("last good snapshot not kept: %+v, %v", rec, err)
	}
	if rec, err := s.Lookup(context.Background(), idA); err != nil || rec.Tenant != "acme" {
		t.Errorf("part of a broken file served: %+v, %v", rec, err)
	}

	writeTestFile(t, path, validFile) // fixed by removing the key again
	eventually(t, "the removed key to go", func() bool { return !found(s, newID)() })
	if n := countLines(logs.String(), "key file invalid"); n != 1 {
		t.Errorf("invalid file logged %d times, want once:\n%s", n, logs)
	}
}

// TestWatchSeesSameSizeEdit rewrites the file in place with content of the
// same size and restores the old mtime: only the content hash tells.
func TestWatchSeesSameSizeEdit(t *testing.T) {
	s, path := openFile(t, validFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, s)
	edited := strings.Replace(validFile, "tenant: acme", "tenant: acmf", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the in-place edit to be served", func() bool {
		rec, err := s.Lookup(context.Background(), idA)
		return err == nil && rec.Tenant == "acmf"
	})
}

func TestWatchSurvivesMissingFile(t *testing.T) {
	logs := &logBuffer{}
	path := newFile(t, validFile)
	s, err := Open(path, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, s)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing file to be logged", func() bool { return strings.Contains(logs.String(), "key file unreadable") })
	if !found(s, idA)() {
		t.Error("last good snapshot dropped when the file went missing")
	}
	writeTestFile(t, path, "keys: {}\n")
	eventually(t, "the recreated file to be served", func() bool { return !found(s, idA)() })
}

func TestWatchAndWrites(t *testing.T) {
	s, _ := openFile(t, "keys: {}\n")
	startWatch(t, s)
	for i := range 20 {
		if err := s.Create(context.Background(), testID(i), newRecord("t")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(context.Background(), testID(i)); err != nil {
			t.Fatalf("key %d not served right after Create: %v", i, err)
		}
	}
}

func TestWatchBadInterval(t *testing.T) {
	s, _ := openFile(t, "keys: {}\n")
	if err := s.Watch(context.Background(), 0); err == nil {
		t.Error("Watch(0) succeeded, want an error")
	}
}

func TestWatchStopsOnCancel(t *testing.T) {
	s, _ := openFile(t, "keys: {}\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Watch(ctx, time.Hour); err != nil {
		t.Errorf("Watch after cancel: %v", err)
	}
	if _, err := s.Lookup(ctx, idA); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("Lookup: %v", err)
	}
}
