package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

const hotKeep = 15 * time.Minute

func newIDs(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = newRecord(t)
	}
	return ids
}

// slotVersion is the KV version of slot n (0: never written).
func (f *fixture) slotVersion(t *testing.T, n int) int {
	t.Helper()
	_, v, _, err := f.store.readHot(context.Background(), OpHotKeys, n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestHotKeysRoundTrip: recorded ids read back from their slots, newest
// first; a call that changes nothing writes nothing; a key in steady use is
// written again only after keep/3; ids older than since are not returned.
func TestHotKeysRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if ids, err := f.store.HotKeys(ctx, time.Unix(0, 0)); err != nil || len(ids) != 0 {
		t.Fatalf("HotKeys with no slots written = %v, %v; want none, nil", ids, err)
	}
	t0 := time.Now().Truncate(time.Second)
	older, newer := newIDs(t, 40), newIDs(t, 40)
	slotsOf := func(ids []string) int {
		m := map[int]bool{}
		for _, id := range ids {
			m[HotSlot(id)] = true
		}
		return len(m)
	}
	if n, err := f.store.RecordHotKeys(ctx, older, t0, hotKeep); err != nil || n != slotsOf(older) {
		t.Fatalf("RecordHotKeys = %d, %v; want %d slots written", n, err, slotsOf(older))
	}
	t1 := t0.Add(time.Minute)
	if _, err := f.store.RecordHotKeys(ctx, newer, t1, hotKeep); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.HotKeys(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Sorted(slices.Values(newer)), slices.Sorted(slices.Values(older))...)
	if !slices.Equal(got, want) {
		t.Fatalf("HotKeys = %d ids, want the %d recorded, newest first", len(got), len(want))
	}
	if got, _ := f.store.HotKeys(ctx, t1); !slices.Equal(got, want[:len(newer)]) {
		t.Errorf("HotKeys since the second call = %d ids, want only its %d", len(got), len(newer))
	}

	// Nothing new within keep/3: not written.
	slot := HotSlot(older[0])
	v := f.slotVersion(t, slot)
	if n, err := f.store.RecordHotKeys(ctx, older, t1, hotKeep); err != nil || n != 0 {
		t.Errorf("recording the same ids a minute later wrote %d slots (%v), want 0", n, err)
	}
	// After keep/3 the times are refreshed, so steady use never expires.
	if n, err := f.store.RecordHotKeys(ctx, older[:1], t0.Add(hotKeep/3+time.Second), hotKeep); err != nil || n != 1 {
		t.Errorf("refresh after keep/3 wrote %d slots (%v), want 1", n, err)
	}
	if got := f.slotVersion(t, slot); got != v+1 {
		t.Errorf("slot %d version %d after the refresh, want %d", slot, got, v+1)
	}
}

// TestHotKeysMerge: replicas merge into the slots, none overwrites another
// (also when they write one slot at the same moment).
func TestHotKeysMerge(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	replicas := make([]*Store, 3)
	for i := range replicas {
		s, err := New(testConfig(f.vault.Addr, f.vault.Token, f.base))
		check(t, err)
		replicas[i] = s
	}
	// Ids that all land in slot 0, one set per replica.
	var sets [3][]string
	for i := 0; len(sets[2]) < 5; i++ {
		if i > 100_000 {
			t.Fatal("no ids for slot 0")
		}
		id, _ := newRecord(t)
		if HotSlot(id) == 0 {
			r := min(len(sets[0]), len(sets[1]), len(sets[2]))
			for j := range sets {
				if len(sets[j]) == r {
					sets[j] = append(sets[j], id)
					break
				}
			}
		}
	}
	now := time.Now()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(replicas))
	for i, s := range replicas {
		wg.Go(func() {
			<-start
			_, errs[i] = s.RecordHotKeys(ctx, sets[i], now, hotKeep)
		})
	}
	close(start)
	wg.Wait()
	check(t, errors.Join(errs...))
	got, err := f.store.HotKeys(ctx, now.Add(-time.Second))
	check(t, err)
	want := slices.Concat(sets[0], sets[1], sets[2])
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("after three replicas wrote slot 0 at once: %d ids, want all %d", len(got), len(want))
	}
}

// TestHotKeysBounds: a slot keeps its HotSlotMax newest ids and drops those
// not seen within keep or from the future; junk written into a slot by
// hand (raw keys, short ids, ids of another slot, times 0 or negative, bad
// JSON) is never returned, and a slot that does not parse is rewritten.
func TestHotKeysBounds(t *testing.T) {
	now, keep := time.Unix(1_800_000_000, 0), 2*time.Hour // room for HotSlotMax+10 distinct seconds
	seen := map[string]int64{}
	for i := range HotSlotMax + 10 {
		seen[fmt.Sprintf("Id%010d", i)] = now.Unix() - int64(HotSlotMax+10-i) // older for smaller i
	}
	seen["Stale0000001"] = now.Add(-keep - time.Second).Unix()
	seen["Future000001"] = now.Add(hotFuture + time.Second).Unix()
	if !mergeHot(seen, nil, now, keep) {
		t.Fatal("mergeHot over the bounds reported no change")
	}
	if len(seen) != HotSlotMax {
		t.Fatalf("slot holds %d ids, want %d", len(seen), HotSlotMax)
	}
	for _, id := range []string{"Stale0000001", "Future000001", "Id0000000009"} {
		if _, ok := seen[id]; ok {
			t.Errorf("%s kept", id)
		}
	}
	if _, ok := seen[fmt.Sprintf("Id%010d", HotSlotMax+9)]; !ok {
		t.Error("the newest id was dropped")
	}
	if mergeHot(seen, nil, now, keep) {
		t.Error("mergeHot within the bounds reported a change")
	}

	f := newFixture(t)
	ctx := context.Background()
	good, _ := newRecord(t)
	n := HotSlot(good)
	var other, zero string
	for other == "" || HotSlot(other) == n {
		other, _ = newRecord(t)
	}
	for zero == "" || HotSlot(zero) != n {
		zero, _ = newRecord(t)
	}
	raw, _, err := format.Generate()
	check(t, err)
	junk := map[string]any{"seen": map[string]any{good: time.Now().Unix(), raw: time.Now().Unix(), "short": time.Now().Unix(),
		other: time.Now().Unix(), strings.Repeat("A", 12): -5, zero: 0}}
	_, err = f.kv.Put(ctx, f.base+"/hot/"+strconv.Itoa(n), junk)
	check(t, err)
	bad := (n + 1) % HotSlots
	_, err = f.kv.Put(ctx, f.base+"/hot/"+strconv.Itoa(bad), map[string]any{"seen": "everything"})
	check(t, err)

	// Since the epoch, so that only the slot's checks keep the junk out
	// (an id of this slot stamped 0 is not a time anything was served).
	got, err := f.store.HotKeys(ctx, time.Unix(0, 0))
	if !slices.Equal(got, []string{good}) {
		t.Errorf("HotKeys from junk slots = %v, want only [%s]", got, good)
	}
	if err == nil || !strings.Contains(err.Error(), "slot "+strconv.Itoa(bad)) || strings.Contains(err.Error(), raw) {
		t.Errorf("HotKeys error %v; want one naming slot %d, without any key", err, bad)
	}
	// The writer drops the junk of the slot it writes, and rewrites a slot
	// that does not parse.
	var fixed string
	for fixed == "" || HotSlot(fixed) != bad {
		fixed, _ = newRecord(t)
	}
	if w, err := f.store.RecordHotKeys(ctx, []string{good, fixed, raw}, time.Now(), hotKeep); err != nil || w != 2 {
		t.Fatalf("RecordHotKeys over junk = %d, %v; want 2 slots written", w, err)
	}
	for _, slot := range []int{n, bad} {
		sec, err := f.kv.Get(ctx, f.base+"/hot/"+strconv.Itoa(slot))
		check(t, err)
		ids := sec.Data["seen"].(map[string]any)
		if len(ids) != 1 || (ids[good] == nil && ids[fixed] == nil) {
			t.Errorf("slot %d after the write holds %d ids, want only the valid one", slot, len(ids))
		}
		if strings.Contains(fmt.Sprint(sec.Data), raw) {
			t.Error("a raw key was written to a slot")
		}
	}
	if got, err := f.store.HotKeys(ctx, time.Now().Add(-time.Minute)); err != nil || len(got) != 2 {
		t.Errorf("HotKeys after the rewrite = %v, %v; want 2 ids, nil", got, err)
	}
}

// TestMergeHotEdges: the bounds of a slot's window, to the second: an id
// last seen exactly keep ago, or exactly hotFuture ahead (clock skew), is
// kept; a served id seen exactly keep/3 ago is fresh enough not to be
// rewritten. One second further, each goes the other way.
func TestMergeHotEdges(t *testing.T) {
	now, keep := time.Unix(1_800_000_000, 0), 15*time.Minute
	tests := []struct {
		name    string
		inSlot  bool
		at      time.Duration // the id's time in the slot, from now
		served  bool
		kept    bool
		want    time.Duration // its time after the merge, from now
		changed bool
	}{
		{"seen keep ago", true, -keep, false, true, -keep, false},
		{"seen a second before that", true, -keep - time.Second, false, false, 0, true},
		{"hotFuture ahead", true, hotFuture, false, true, hotFuture, false},
		{"a second further ahead", true, hotFuture + time.Second, false, false, 0, true},
		{"served, seen keep/3 ago", true, -keep / 3, true, true, -keep / 3, false},
		{"served, seen a second before that", true, -keep/3 - time.Second, true, true, 0, true},
		{"served, new", false, 0, true, true, 0, true},
	}
	const id = "AAAAAAAAAAAA"
	for _, tt := range tests {
		seen := map[string]int64{}
		if tt.inSlot {
			seen[id] = now.Add(tt.at).Unix()
		}
		var ids []string
		if tt.served {
			ids = []string{id}
		}
		changed := mergeHot(seen, ids, now, keep)
		at, kept := seen[id]
		if changed != tt.changed || kept != tt.kept || kept && at != now.Add(tt.want).Unix() {
			t.Errorf("%s: changed %v, kept %v at %+ds; want %v, %v at %+ds",
				tt.name, changed, kept, at-now.Unix(), tt.changed, tt.kept, int64(tt.want/time.Second))
		}
	}
}

// TestHotKeysVaultDown: no Vault, no ids, an error (never a silent empty
// working set), and the writer stops at the first failure.
func TestHotKeysVaultDown(t *testing.T) {
	s, err := New(testConfig("http://127.0.0.1:1", "t", "x"))
	check(t, err)
	ctx := context.Background()
	if ids, err := s.HotKeys(ctx, time.Now()); err == nil || len(ids) != 0 {
		t.Errorf("HotKeys with Vault down = %v, %v; want an error", ids, err)
	}
	var calls int
	s.SetObserver(func(op, class string, _ time.Duration) { calls++ })
	n, err := s.RecordHotKeys(ctx, newIDs(t, 50), time.Now(), hotKeep)
	if n != 0 || err == nil {
		t.Errorf("RecordHotKeys with Vault down = %d, %v; want 0 and an error", n, err)
	}
	if calls != 1 {
		t.Errorf("RecordHotKeys with Vault down made %d requests, want 1", calls)
	}
	var e *Error
	if !errors.As(err, &e) || errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("error %v: want a Vault *Error", err)
	}
}
