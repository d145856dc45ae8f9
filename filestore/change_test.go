package filestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"
)

const idD = "2HdLw8YsQe4R"

var pepper2 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

// changeBase: a sha256 key, an hmac-sha256 key under pepper 1, another
// sha256 key.
var changeBase = "# hand-written\npepper: {current: 1, versions: {1: " + pepper1 + "}}\nkeys:\n" +
	rec(idA, "hash: "+hashA+", tenant: a, status: active") +
	rec(idB, "hash: "+hashB+", tenant: b, status: active") +
	rec(idC, "hash: "+hashA+", tenant: c, status: active")

// recordChanges collects what s reports through OnChange.
func recordChanges(s *Store) <-chan Change {
	ch := make(chan Change, 16)
	s.OnChange(func(c Change) { ch <- c })
	return ch
}

func nextChange(t *testing.T, ch <-chan Change) Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported within 5s")
		return Change{}
	}
}

func wantChange(t *testing.T, ch <-chan Change, ids []string, peppers bool) {
	t.Helper()
	c := nextChange(t, ch)
	if !slices.Equal(c.IDs, ids) || c.Peppers != peppers {
		t.Errorf("change %+v, want IDs %v, Peppers %v", c, ids, peppers)
	}
}

func wantNoChange(t *testing.T, ch <-chan Change) {
	t.Helper()
	select {
	case c := <-ch:
		t.Errorf("change %+v reported, want none", c)
	default:
	}
}

// TestOnChangeWatch: a reload reports exactly the ids whose entries were
// added, edited or removed, or whose records became valid or invalid
// through a pepper edit; nothing for an edit that changes no entry, or for
// a file that does not load.
func TestOnChangeWatch(t *testing.T) {
	logs := &logBuffer{}
	path := newFile(t, changeBase)
	s, err := Open(path, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	changes := recordChanges(s)
	startWatch(t, s)
	reloaded := func(n int) func() bool {
		return func() bool { return countLines(logs.String(), "key file reloaded") >= n }
	}

	file := strings.Replace(changeBase, "tenant: a,", "tenant: a2,", 1)
	file = strings.Replace(file, rec(idC, "hash: "+hashA+", tenant: c, status: active"),
		rec(idD, "hash: "+hashA+", tenant: d, status: active"), 1)
	writeTestFile(t, path, "# edited\n"+file)
	wantChange(t, changes, []string{idD, idA, idC}, false) // sorted

	// Comments, layout and the versions section: no entry changed.
	relaid := strings.Replace(file, "{hash: "+hashB+", tenant: b, status: active}",
		"\n    hash: "+hashB+"\n    status: active\n    tenant: b", 1)
	writeTestFile(t, path, "# relaid\n"+relaid+"versions: {"+idB+": 2}\n")
	eventually(t, "the relaid file to be reloaded", reloaded(2))
	wantNoChange(t, changes)

	// A new pepper version: no record changes validity.
	twoPeppers := strings.Replace(relaid, "{current: 1, versions: {1: "+pepper1+"}}",
		"{current: 2, versions: {1: "+pepper1+", 2: "+pepper2+"}}", 1)
	writeTestFile(t, path, twoPeppers)
	wantChange(t, changes, nil, true)

	// Pepper 1 removed: the hmac-sha256 record under it no longer loads.
	writeTestFile(t, path, strings.Replace(twoPeppers, "1: "+pepper1+", ", "", 1))
	wantChange(t, changes, []string{idB}, true)

	writeTestFile(t, path, changeBase+"  "+idA+"x: [\n") // YAML error: not loaded
	eventually(t, "the broken file to be logged", func() bool { return strings.Contains(logs.String(), "key file invalid") })
	wantNoChange(t, changes)
}

// TestOnChangeWrites: a write through the Store reports the id it wrote,
// including the first write, which re-encodes a hand-written file.
func TestOnChangeWrites(t *testing.T) {
	s, _ := openFile(t, changeBase)
	changes := recordChanges(s)
	ctx := context.Background()

	r, v, err := s.Get(ctx, idA)
	if err != nil {
		t.Fatal(err)
	}
	r.Status = "revoked"
	if err := s.Update(ctx, idA, r, v); err != nil {
		t.Fatal(err)
	}
	wantChange(t, changes, []string{idA}, false)

	if err := s.Delete(ctx, idC); err != nil {
		t.Fatal(err)
	}
	wantChange(t, changes, []string{idC}, false)

	if err := s.Create(ctx, idD, newRecord("d")); err != nil {
		t.Fatal(err)
	}
	wantChange(t, changes, []string{idD}, false)

	s.OnChange(nil)
	if err := s.Delete(ctx, idD); err != nil {
		t.Fatal(err)
	}
	wantNoChange(t, changes)
}
