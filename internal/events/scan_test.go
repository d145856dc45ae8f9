package events

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// scanAt advances the clock to at and scans once, as the leader does.
type scanner struct {
	t   *testing.T
	clk *clock
	p   *producer
	st  State
}

func (s *scanner) at(at time.Time) []Event {
	s.t.Helper()
	s.clk.set(at)
	evs, st, err := s.p.scan(context.Background(), s.st)
	if err != nil {
		s.t.Fatalf("scan at %s: %v", at, err)
	}
	s.st = st
	return evs
}

// summary is "type subject days/idle" per event, for comparisons.
func summary(evs []Event, names map[string]string) []string {
	var out []string
	for _, e := range evs {
		s := string(e.Type) + " " + names[e.Subject]
		if e.Data.Days > 0 {
			s += " " + (time.Duration(e.Data.Days) * day).String()
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestTimeEvents: with an injected clock, key.expiring fires once per
// threshold (7 and 1 days before), key.expired once at expiry, key.unused
// once when the idle period ends, and auto-disable revokes the idle key
// (reason "unused") after the grace, once. A window that spans several
// thresholds sends only the latest news.
func TestTimeEvents(t *testing.T) {
	clk := &clock{t: t0}
	fs, _ := newFileStore(t)
	store := &usageStore{Store: fs, used: map[string]time.Time{}}
	svc := newService(t, store, clk.Now)
	cfg := testConfig(Webhook{URL: "http://127.0.0.1:1/x", Secret: mustSecret(t)})
	cfg.Now, cfg.UnusedFor, cfg.AutoDisable, cfg.AutoDisableGrace = clk.Now, 30*day, true, 5*day
	r, err := New(cfg, svc, NewFileCoordinator(t.TempDir()+"/k"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme"), ExpiresAt: ptr(t0.Add(10 * day))})
	b := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme"), Name: ptr("idle")})
	c := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme"), ExpiresAt: ptr(t0.Add(20 * day))})
	store.use(a.ID, t0.Add(9*day)) // a and c stay in use
	store.use(c.ID, t0.Add(19*day))
	names := map[string]string{a.ID: "a", b.ID: "b", c.ID: "c"}
	s := &scanner{t: t, clk: clk, p: &producer{r: r}, st: State{Started: t0, LastScan: t0, LastList: t0}}

	steps := []struct {
		at   time.Time
		want []string
	}{
		{t0.Add(2 * day), nil},
		{t0.Add(3*day + time.Hour), []string{"key.expiring a 168h0m0s"}},
		{t0.Add(3*day + 2*time.Hour), nil}, // once per threshold
		{t0.Add(9*day + time.Hour), []string{"key.expiring a 24h0m0s"}},
		{t0.Add(10*day - time.Minute), nil},
		{t0.Add(10*day + time.Minute), []string{"key.expired a"}},
		{t0.Add(11 * day), nil},
		// c: both of its expiring thresholds (13d, 19d) pass in one window: only the 1-day one.
		{t0.Add(19*day + 12*time.Hour), []string{"key.expiring c 24h0m0s"}},
		{t0.Add(30*day + time.Minute), []string{"key.expired c", "key.unused b"}},
		{t0.Add(31 * day), nil},
	}
	for i, st := range steps {
		if got := summary(s.at(st.at), names); !slices.Equal(got, st.want) {
			t.Errorf("step %d (t0+%s): %q, want %q", i, st.at.Sub(t0), got, st.want)
		}
	}
	if k, _ := svc.Get(context.Background(), b.ID); k.Record.Status != policy.StatusActive {
		t.Fatalf("b revoked before its grace ended")
	}
	if got := s.at(t0.Add(35*day + time.Minute)); len(got) != 0 {
		t.Errorf("at the end of the grace: events %v, want none (the revocation is journaled, not scanned)", summary(got, names))
	}
	k, err := svc.Get(context.Background(), b.ID)
	if err != nil || k.Record.Status != policy.StatusRevoked || k.Record.RevokedReason != UnusedReason {
		t.Fatalf("b after the grace: %+v %v, want revoked with reason %q", k, err, UnusedReason)
	}
	if got := s.at(t0.Add(40 * day)); len(got) != 0 {
		t.Errorf("after: %v", summary(got, names))
	}
}

// TestTimeEventIDs: the same fact gives the same id when produced again
// (a new leader from the last saved state), and different facts differ.
func TestTimeEventIDs(t *testing.T) {
	clk, svc, r := clockedRunner(t, nil)
	issue(t, svc, keyadmin.Fields{Tenant: ptr("acme"), ExpiresAt: ptr(t0.Add(10 * day))})
	saved := State{Started: t0, LastScan: t0}
	first := &scanner{t: t, clk: clk, p: &producer{r: r}, st: saved}
	second := &scanner{t: t, clk: clk, p: &producer{r: r}, st: saved}
	a, b := first.at(t0.Add(4*day)), second.at(t0.Add(4*day+time.Hour))
	if len(a) != 1 || len(b) != 1 || a[0].ID != b[0].ID {
		t.Fatalf("repeat of one fact: %v and %v, want one event with one id", a, b)
	}
	c := first.at(t0.Add(9*day + time.Hour))
	if len(c) != 1 || c[0].ID == a[0].ID {
		t.Fatalf("the next threshold: %v, want a new id", c)
	}
}

// TestUnusedOffWithoutUsage: the file store does not know key use, so
// key.unused is off and auto-disable is refused.
func TestUnusedOffWithoutUsage(t *testing.T) {
	fs, path := newFileStore(t)
	svc := newService(t, fs, nil)
	cfg := testConfig(Webhook{URL: "http://127.0.0.1:1/x", Secret: mustSecret(t)})
	r, err := New(cfg, svc, NewFileCoordinator(path), nil)
	if err != nil || r.cfg.UnusedFor != 0 {
		t.Fatalf("New: %v, unused-for %s; want key.unused off", err, r.cfg.UnusedFor)
	}
	cfg.AutoDisable = true
	if _, err := New(cfg, svc, NewFileCoordinator(path), nil); err == nil {
		t.Fatal("auto-disable without key use: no error")
	}
}

// clockedRunner is a Runner over an empty file store (and journal j, nil
// for none) whose service and events read the returned clock, at t0.
func clockedRunner(t *testing.T, j Journal) (*clock, *keyadmin.Service, *Runner) {
	t.Helper()
	clk := &clock{t: t0}
	fs, _ := newFileStore(t)
	svc := newService(t, fs, clk.Now)
	cfg := testConfig(Webhook{URL: "http://127.0.0.1:1/x", Secret: mustSecret(t)})
	cfg.Now = clk.Now
	r, err := New(cfg, svc, NewFileCoordinator(t.TempDir()+"/k"), j)
	if err != nil {
		t.Fatal(err)
	}
	return clk, svc, r
}

func mustSecret(t *testing.T) Secret {
	t.Helper()
	s, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gapJournal is a journal that lost entries: every read is incomplete.
type gapJournal struct{ latest int }

func (g gapJournal) JournalSince(context.Context, int) ([]JournalEntry, int, bool, error) {
	return nil, g.latest, false, nil
}

// TestJournalGapCatchUp: when the journal lost entries before they were
// read, keys updated since the last complete read are reported from their
// records (revoked ones as key.revoked or key.leaked), once per update, with
// ids a repeat reproduces; keys not updated since are not.
func TestJournalGapCatchUp(t *testing.T) {
	clk, svc, r := clockedRunner(t, gapJournal{latest: 40})
	old := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	clk.set(t0.Add(time.Hour))
	changed := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	leaked := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	clk.set(t0.Add(2 * time.Hour))
	if _, err := svc.Modify(context.Background(), changed.ID, keyadmin.Fields{Name: ptr("renamed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Revoke(context.Background(), leaked.ID, LeakedReason); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{old.ID: "old", changed.ID: "changed", leaked.ID: "leaked"}
	p := &producer{r: r}
	st := State{Journal: 30, JournalAt: t0.Add(30 * time.Minute)}
	evs, next, err := p.changes(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(evs, names), []string{"key.leaked leaked", "key.updated changed"}; !slices.Equal(got, want) {
		t.Errorf("after a gap: %q, want %q", got, want)
	}
	if next.Journal != 40 || !next.JournalAt.Equal(clk.Now().UTC()) {
		t.Errorf("state after the gap: journal %d at %s", next.Journal, next.JournalAt)
	}
	again, _, err := p.changes(context.Background(), st)
	if err != nil || len(again) != len(evs) {
		t.Fatalf("the catch-up repeated: %d events, %v", len(again), err)
	}
	for i := range evs {
		if evs[i].ID != again[i].ID {
			t.Errorf("a repeated catch-up gave event %s id %s, first %s", evs[i].Type, again[i].ID, evs[i].ID)
		}
	}
	if evs, _, _ := p.changes(context.Background(), State{Journal: 30}); len(evs) != 0 {
		t.Errorf("no complete read before: %d events, want none (nothing to catch up from)", len(evs))
	}
}

// TestFileStoreDiff: without a journal, each poll compares the keys with
// the last ones seen. A key new since then gets key.created (id from its
// created_at, so a repeat after the key changed has the same id) and then
// every transition it went through: a rotation, then a revocation; changes
// within one poll coalesce but a revocation is never hidden, whichever the
// key's state when last seen.
func TestFileStoreDiff(t *testing.T) {
	clk, svc, r := clockedRunner(t, nil)
	ctx := context.Background()
	p := &producer{r: r}
	poll := func(st State) ([]Event, State) {
		t.Helper()
		evs, next, err := p.changes(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		return evs, next
	}
	types := func(evs []Event, names map[string]string) []string {
		var out []string
		for _, e := range evs {
			out = append(out, string(e.Type)+" "+names[e.Subject])
		}
		return out
	}
	change := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	kept := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	renamed := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	revoked := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	rotRev := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	deleted := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	names := map[string]string{kept.ID: "kept", renamed.ID: "renamed", revoked.ID: "revoked", rotRev.ID: "rotrev", deleted.ID: "deleted"}
	evs, seen := poll(State{})
	if len(evs) != 5 {
		t.Fatalf("first poll: %q, want five key.created", types(evs, names))
	}
	firstIDs := map[string]string{}
	for _, e := range evs {
		if e.Type != KeyCreated {
			t.Errorf("first poll: %s %s, want key.created", e.Type, names[e.Subject])
		}
		firstIDs[e.Subject] = e.ID
	}

	// Keys created and changed while no poll saw them.
	clk.set(t0.Add(time.Minute))
	newLeaked := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	newRevoked := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	newRotated := issue(t, svc, keyadmin.Fields{Tenant: ptr("acme")})
	names[newLeaked.ID], names[newRevoked.ID], names[newRotated.ID] = "newleaked", "newrevoked", "newrotated"
	clk.set(t0.Add(2 * time.Minute))
	_, err := svc.Revoke(ctx, newLeaked.ID, LeakedReason)
	change("revoke", err)
	_, err = svc.Revoke(ctx, newRevoked.ID, "compromised host")
	change("revoke", err)
	rot, err := svc.Rotate(ctx, newRotated.ID, time.Hour)
	change("rotate", err)
	names[rot.ID] = "newrotated'"
	// Known keys changed.
	_, err = svc.Modify(ctx, renamed.ID, keyadmin.Fields{Name: ptr("renamed")})
	change("modify", err)
	_, err = svc.Modify(ctx, revoked.ID, keyadmin.Fields{Name: ptr("renamed")})
	change("modify", err)
	_, err = svc.Revoke(ctx, revoked.ID, LeakedReason)
	change("revoke", err)
	rot2, err := svc.Rotate(ctx, rotRev.ID, time.Hour)
	change("rotate", err)
	names[rot2.ID] = "rotrev'"
	_, err = svc.Revoke(ctx, rotRev.ID, "superseded")
	change("revoke", err)
	_, err = svc.Delete(ctx, deleted.ID, true)
	change("delete", err)

	evs, next := poll(seen)
	got := types(evs, names)
	want := []string{
		"key.created newleaked", "key.leaked newleaked",
		"key.created newrevoked", "key.revoked newrevoked",
		"key.created newrotated", "key.rotated newrotated",
		"key.created newrotated'",
		"key.updated renamed",
		"key.leaked revoked",
		"key.rotated rotrev", "key.revoked rotrev",
		"key.created rotrev'",
		"key.deleted deleted",
	}
	// Keys come in id order; compare each key's events in order, and the set.
	perKey := func(list []string) map[string][]string {
		m := map[string][]string{}
		for _, s := range list {
			typ, name, _ := strings.Cut(s, " ")
			m[name] = append(m[name], typ)
		}
		return m
	}
	if g, w := perKey(got), perKey(want); len(got) != len(want) || !maps.EqualFunc(g, w, slices.Equal) {
		t.Errorf("second poll:\n got %q\nwant %q (each key's events in this order)", got, want)
	}
	if more, _ := poll(next); len(more) != 0 {
		t.Errorf("a poll with no change: %q", types(more, names))
	}

	// A replica that takes over from the state before the second poll
	// produces the same events with the same ids; key.created of a key that
	// changed since it was first announced keeps its id.
	again, _ := poll(seen)
	if len(again) != len(evs) {
		t.Fatalf("repeat: %q", types(again, names))
	}
	for i := range evs {
		if again[i].ID != evs[i].ID {
			t.Errorf("repeat of %s %s: id %s, first %s", evs[i].Type, names[evs[i].Subject], again[i].ID, evs[i].ID)
		}
	}
	replay, _ := poll(State{})
	for _, e := range replay {
		if first, ok := firstIDs[e.Subject]; ok && e.Type == KeyCreated && e.ID != first {
			t.Errorf("key.created of %s produced again after it changed: id %s, first %s", names[e.Subject], e.ID, first)
		}
	}
}
