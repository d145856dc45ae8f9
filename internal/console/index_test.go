package console

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

var ixT0 = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingStore counts the reads the index makes; List also names the
// ids in listed, as Vault lists deleted keys.
type countingStore struct {
	keyadmin.Store
	mu     sync.Mutex
	gets   map[string]int
	lists  int
	listed []string
}

func (s *countingStore) Get(ctx context.Context, id string) (*policy.Record, int, error) {
	s.mu.Lock()
	s.gets[id]++
	s.mu.Unlock()
	return s.Store.Get(ctx, id)
}

func (s *countingStore) List(ctx context.Context) ([]string, error) {
	ids, err := s.Store.List(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	ids = append(ids, s.listed...)
	slices.Sort(ids)
	return slices.Compact(ids), err
}

// reads returns the Gets by id and the Lists since the last call.
func (s *countingStore) reads() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, l := s.gets, s.lists
	s.gets, s.lists = map[string]int{}, 0
	return g, l
}

// journal is a change journal: entry i is version i+1. Reading from a
// version before pruned is incomplete (those entries are gone).
type journal struct {
	mu      sync.Mutex
	entries []journalEntry
	pruned  int
}

type journalEntry struct {
	ids     []string
	newKeys bool
}

func (j *journal) ChangedSince(_ context.Context, after int) ([]string, bool, int, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	latest := len(j.entries)
	if after < j.pruned || after < 0 {
		return nil, false, latest, false, nil
	}
	var ids []string
	newKeys := false
	for _, e := range j.entries[min(after, latest):] {
		ids = append(ids, e.ids...)
		newKeys = newKeys || e.newKeys
	}
	return ids, newKeys, latest, true, nil
}

func (j *journal) add(newKeys bool, ids ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, journalEntry{ids: ids, newKeys: newKeys})
}

func (j *journal) prune() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pruned = len(j.entries)
}

// ixFixture is an index over a real file store. elsewhere writes to the
// store as another process would (not counted, not journaled).
type ixFixture struct {
	t         *testing.T
	clock     *fakeClock
	cfg       Config
	ix        *index
	store     *countingStore
	journal   *journal
	grant     *Grant
	elsewhere *keyadmin.Service
	ids       []string // issued at start, sorted
}

func newIxFixture(t *testing.T, n int) *ixFixture {
	t.Helper()
	f := &ixFixture{t: t, clock: &fakeClock{t: ixT0}, journal: &journal{}}
	fs, err := filestore.OpenOrCreate(context.Background(), filepath.Join(t.TempDir(), "keys.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.store = &countingStore{Store: fs, gets: map[string]int{}}
	if f.elsewhere, err = keyadmin.New(keyadmin.Config{Now: f.clock.Now}, fs); err != nil {
		t.Fatal(err)
	}
	admin, err := keyadmin.New(keyadmin.Config{Now: f.clock.Now}, f.store)
	if err != nil {
		t.Fatal(err)
	}
	f.grant = &Grant{Who: Who{Name: "tester"}, Admin: admin, Changes: f.journal}
	f.cfg = DefaultConfig()
	f.cfg.Now, f.cfg.Log = f.clock.Now, slog.New(slog.DiscardHandler)
	f.ix = newIndex(&f.cfg)
	for i := range n {
		f.ids = append(f.ids, f.issue(fmt.Sprintf("key-%d", i)))
	}
	slices.Sort(f.ids)
	return f
}

func (f *ixFixture) issue(name string) string {
	f.t.Helper()
	k, err := f.elsewhere.Issue(context.Background(), keyadmin.Fields{Name: &name, Tenant: ptrTo("acme")})
	if err != nil {
		f.t.Fatal(err)
	}
	return k.ID
}

func (f *ixFixture) update() {
	f.t.Helper()
	if err := f.ix.update(context.Background(), f.grant); err != nil {
		f.t.Fatalf("update: %v", err)
	}
}

// wantReads checks the store reads since the last check.
func (f *ixFixture) wantReads(what string, gets map[string]int, lists int) {
	f.t.Helper()
	g, l := f.store.reads()
	if !maps.Equal(g, gets) || l != lists {
		f.t.Errorf("%s: read %v and listed %d times; want %v and %d", what, g, l, gets, lists)
	}
}

// rows are the index's ids with their names.
func (f *ixFixture) rows() map[string]string {
	f.ix.mu.RLock()
	defer f.ix.mu.RUnlock()
	out := map[string]string{}
	for id, r := range f.ix.rows {
		out[id] = ""
		if r.Rec != nil {
			out[id] = r.Rec.Name
		}
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// The first update reads every key once, and takes the journal's version.
func TestIndexLoad(t *testing.T) {
	f := newIxFixture(t, 5)
	f.journal.add(false, f.ids[0])
	f.update()
	want := map[string]int{}
	for _, id := range f.ids {
		want[id] = 1
	}
	f.wantReads("load", want, 1)
	if got := slices.Sorted(maps.Keys(f.rows())); !slices.Equal(got, f.ids) {
		t.Errorf("index holds %v, want %v", got, f.ids)
	}
	if f.ix.version != 1 || !f.ix.loaded.Equal(ixT0) {
		t.Errorf("version %d, loaded %v; want 1, %v", f.ix.version, f.ix.loaded, ixT0)
	}
	f.update() // nothing is due
	f.wantReads("update at once", map[string]int{}, 0)
}

// The ids the journal names are re-read, every JournalEvery at most; the
// others are not; a deleted one leaves the index.
func TestIndexJournal(t *testing.T) {
	f := newIxFixture(t, 4)
	ctx := context.Background()
	f.update()
	f.store.reads()

	if _, err := f.elsewhere.Modify(ctx, f.ids[0], keyadmin.Fields{Name: ptrTo("renamed")}); err != nil {
		t.Fatal(err)
	}
	f.journal.add(false, f.ids[0])
	f.clock.Advance(f.cfg.JournalEvery - time.Millisecond)
	f.update()
	f.wantReads("before JournalEvery", map[string]int{}, 0)
	f.clock.Advance(time.Millisecond)
	f.update()
	f.wantReads("journal", map[string]int{f.ids[0]: 1}, 0)
	if name := f.rows()[f.ids[0]]; name != "renamed" || f.ix.version != 1 {
		t.Errorf("after the journal: name %q, version %d; want renamed, 1", name, f.ix.version)
	}

	f.clock.Advance(f.cfg.JournalEvery)
	f.update()
	f.wantReads("empty journal", map[string]int{}, 0)

	if _, err := f.elsewhere.Delete(ctx, f.ids[1], true); err != nil {
		t.Fatal(err)
	}
	f.journal.add(false, f.ids[1], f.ids[2])
	f.clock.Advance(f.cfg.JournalEvery)
	f.update()
	f.wantReads("journal with a delete", map[string]int{f.ids[1]: 1, f.ids[2]: 1}, 0)
	if _, ok := f.rows()[f.ids[1]]; ok || !f.ix.gone[f.ids[1]] {
		t.Errorf("deleted key %s is still in the index (gone: %v)", f.ids[1], f.ix.gone)
	}
}

// A journal that cannot say everything (pruned past the index's version)
// makes a full reload.
func TestIndexIncompleteJournalReloads(t *testing.T) {
	f := newIxFixture(t, 3)
	f.update()
	f.store.reads()
	if _, err := f.elsewhere.Modify(context.Background(), f.ids[2], keyadmin.Fields{Name: ptrTo("renamed")}); err != nil {
		t.Fatal(err)
	}
	f.journal.add(false, "lost")
	f.journal.prune()
	f.clock.Advance(f.cfg.JournalEvery)
	f.update()
	f.wantReads("incomplete journal", map[string]int{f.ids[0]: 1, f.ids[1]: 1, f.ids[2]: 1}, 1)
	if name := f.rows()[f.ids[2]]; name != "renamed" || !f.ix.loaded.Equal(f.clock.Now()) {
		t.Errorf("after the reload: name %q, loaded %v", name, f.ix.loaded)
	}
}

// A listing every ListEvery adds keys created elsewhere (read once) and
// drops keys deleted elsewhere; other keys are not re-read.
func TestIndexListing(t *testing.T) {
	f := newIxFixture(t, 3)
	f.update()
	f.store.reads()
	added := f.issue("added elsewhere")
	if _, err := f.elsewhere.Delete(context.Background(), f.ids[0], true); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(f.cfg.ListEvery - time.Second)
	f.update()
	f.wantReads("before ListEvery", map[string]int{}, 0)
	if _, ok := f.rows()[added]; ok {
		t.Fatal("a key created elsewhere was added before the listing")
	}
	f.clock.Advance(time.Second)
	f.update()
	f.wantReads("listing", map[string]int{added: 1}, 1)
	rows := f.rows()
	if _, ok := rows[f.ids[0]]; ok || rows[added] != "added elsewhere" || len(rows) != 3 {
		t.Errorf("after the listing the index holds %v; want %s added, %s dropped", rows, added, f.ids[0])
	}
}

// An import's journal entry (new keys, no ids) lists the ids at once,
// not at the next ListEvery.
func TestIndexNewKeysEntryLists(t *testing.T) {
	f := newIxFixture(t, 2)
	f.update()
	f.store.reads()
	imported := f.issue("imported")
	f.journal.add(true)
	f.clock.Advance(f.cfg.JournalEvery)
	f.update()
	f.wantReads("new-keys entry", map[string]int{imported: 1}, 1)
	if f.rows()[imported] != "imported" {
		t.Error("the imported key is not in the index")
	}
}

// A deleted key that the store still lists (Vault) is read once, then
// remembered as gone, not re-read at every listing.
func TestIndexDeletedNotRereadAtEveryListing(t *testing.T) {
	f := newIxFixture(t, 3)
	deleted := f.ids[1]
	if _, err := f.elsewhere.Delete(context.Background(), deleted, true); err != nil {
		t.Fatal(err)
	}
	f.store.listed = []string{deleted}
	f.update()
	f.wantReads("load", map[string]int{f.ids[0]: 1, deleted: 1, f.ids[2]: 1}, 1)
	f.clock.Advance(f.cfg.ListEvery)
	f.update()
	f.wantReads("first listing", map[string]int{deleted: 1}, 1)
	for i := range 3 {
		f.clock.Advance(f.cfg.ListEvery)
		f.update()
		f.wantReads(fmt.Sprintf("listing %d", i+2), map[string]int{}, 1)
	}
	if _, ok := f.rows()[deleted]; ok {
		t.Error("the deleted key is in the index")
	}
}

// The console's own writes are in the index at once, with no read.
func TestIndexPut(t *testing.T) {
	f := newIxFixture(t, 2)
	f.update()
	f.store.reads()
	k, err := f.grant.Admin.Revoke(context.Background(), f.ids[0], "test")
	if err != nil {
		t.Fatal(err)
	}
	f.ix.put(f.ids[0], &keyadmin.Key{ID: f.ids[0], Record: k.Record})
	f.ix.put(f.ids[1], nil)
	f.store.reads()
	res := f.ix.query(query{Status: "revoked"}, 50, f.clock.Now())
	if res.Total != 1 || res.Rows[0].ID != f.ids[0] {
		t.Errorf("revoked keys = %+v, want %s", res.Rows, f.ids[0])
	}
	if _, ok := f.rows()[f.ids[1]]; ok || f.ix.summary(f.clock.Now()).Total != 1 {
		t.Error("a key the console deleted is still in the index")
	}
	f.update()
	f.wantReads("after puts", map[string]int{}, 0)
}

// Findings survive a full reload, even one soon after the last audit.
func TestIndexFindingsAfterReload(t *testing.T) {
	f := newIxFixture(t, 3) // no expiry: every key has no_expiry
	f.update()
	if res := f.ix.query(query{Finding: "no_expiry"}, 50, f.clock.Now()); res.Total != 3 {
		t.Fatalf("after the load %d keys have no_expiry, want 3", res.Total)
	}
	f.journal.add(false)
	f.journal.prune()
	f.clock.Advance(f.cfg.JournalEvery)
	f.update() // a full reload
	if !f.ix.loaded.Equal(f.clock.Now()) {
		t.Fatal("no reload")
	}
	if res := f.ix.query(query{Finding: "no_expiry"}, 50, f.clock.Now()); res.Total != 3 {
		t.Errorf("after a reload %d keys have no_expiry, want 3", res.Total)
	}
	if s := f.ix.summary(f.clock.Now()); s.Findings["no_expiry"] != 3 {
		t.Errorf("after a reload the overview counts %v findings, want no_expiry: 3", s.Findings)
	}
}

// Sorting by id reverses with a leading "-", like every other column.
func TestSortRowsByIDDescending(t *testing.T) {
	rows := []*row{{ID: "aaaaaaaaaaaa"}, {ID: "cccccccccccc"}, {ID: "bbbbbbbbbbbb"}}
	for _, tt := range []struct {
		sort string
		want []string
	}{
		{"id", []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"}},
		{"-id", []string{"cccccccccccc", "bbbbbbbbbbbb", "aaaaaaaaaaaa"}},
	} {
		sortRows(rows, tt.sort, ixT0)
		var got []string
		for _, r := range rows {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("sort %s = %v, want %v", tt.sort, got, tt.want)
		}
	}
}
