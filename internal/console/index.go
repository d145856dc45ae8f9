package console

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// The index holds every key's record in memory so that listing, searching
// and counting 10,000+ keys costs no store read per page view. It is filled
// once with every key, then kept current through the change journal (the
// ids it names are re-read), a listing of the ids every ListEvery (keys
// created elsewhere are not journaled), the console's own writes, and a
// full reload every ReloadEvery (last use, records written straight to the
// store). Every read runs with the credentials of the person whose page
// view asked for it; a page is shown only to people whose own credentials
// can list the keys (see Console.canList).
type index struct {
	cfg *Config

	refresh sync.Mutex // one refresh at a time; page views wait for it

	mu       sync.RWMutex
	rows     map[string]*row
	gone     map[string]bool // ids listed but deleted (Vault lists deleted keys): not re-read at each listing
	loaded   time.Time       // last full load; zero: never
	listed   time.Time       // last listing of ids
	polled   time.Time       // last journal read
	version  int             // journal version read up to; -1: unknown
	loadErr  error           // why the last full load failed
	findings time.Time       // when findings were last computed
}

// row is one key as the pages show it. A stored row is never changed:
// query hands rows out, and pages read them after the lock is released;
// a change stores a new row.
type row struct {
	ID       string
	Rec      *policy.Record // nil when Err is set
	Err      string         // the record cannot be read or validated
	LastUsed time.Time
	// Findings are policy.Audit's codes plus "unused", computed at
	// index.findings.
	Findings []policy.Finding
}

func newIndex(cfg *Config) *index {
	return &index{cfg: cfg, rows: map[string]*row{}, gone: map[string]bool{}, version: -1}
}

// rowOf is k's row with its findings at now.
func (ix *index) rowOf(k keyadmin.Key, now time.Time) *row {
	r := &row{ID: k.ID, Rec: k.Record, LastUsed: k.LastUsed}
	if k.Err != nil {
		r.Err = k.Err.Error()
	}
	ix.audit(r, now)
	return r
}

// update brings the index up to date as far as its intervals ask, reading
// with g's credentials. A failure leaves what was there.
func (ix *index) update(ctx context.Context, g *Grant) error {
	ix.refresh.Lock()
	defer ix.refresh.Unlock()
	now := ix.cfg.Now()
	ix.mu.RLock()
	loaded, listed, polled, version := ix.loaded, ix.listed, ix.polled, ix.version
	ix.mu.RUnlock()
	reload := ix.cfg.ReloadEvery
	if g.Changes == nil {
		// No journal (the file store): nothing says what changed, so read
		// everything as often as ids are listed.
		reload = min(reload, ix.cfg.ListEvery)
	}
	if loaded.IsZero() || now.Sub(loaded) >= reload {
		return ix.load(ctx, g, now)
	}
	if g.Changes != nil && now.Sub(polled) >= ix.cfg.JournalEvery {
		ids, newKeys, latest, complete, err := g.Changes.ChangedSince(ctx, version)
		if err != nil {
			return err
		}
		if !complete {
			return ix.load(ctx, g, now)
		}
		ix.reread(ctx, g, ids)
		ix.mu.Lock()
		ix.polled, ix.version = now, latest
		if newKeys {
			ix.listed = time.Time{} // imports: list the ids now
		}
		listed = ix.listed
		ix.mu.Unlock()
	}
	if now.Sub(listed) >= ix.cfg.ListEvery {
		return ix.list(ctx, g, now)
	}
	ix.reaudit(now)
	return nil
}

// load reads every key.
func (ix *index) load(ctx context.Context, g *Grant, now time.Time) error {
	version := -1
	if g.Changes != nil { // the version before the read: changes after it are re-read
		if _, _, v, _, err := g.Changes.ChangedSince(ctx, -1); err == nil {
			version = v
		}
	}
	keys, err := g.Admin.List(ctx, keyadmin.Filter{})
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err != nil {
		ix.loadErr = err
		return err
	}
	rows := make(map[string]*row, len(keys))
	for _, k := range keys {
		rows[k.ID] = ix.rowOf(k, now)
	}
	ix.rows, ix.gone, ix.loaded, ix.listed, ix.polled, ix.version, ix.loadErr = rows, map[string]bool{}, now, now, now, version, nil
	ix.findings = now
	return nil
}

// list adds keys the index does not know and drops deleted ones.
func (ix *index) list(ctx context.Context, g *Grant, now time.Time) error {
	ids, err := g.Admin.IDs(ctx)
	if err != nil {
		return err
	}
	ix.mu.RLock()
	var added []string
	for _, id := range ids {
		if _, ok := ix.rows[id]; !ok && !ix.gone[id] {
			added = append(added, id)
		}
	}
	ix.mu.RUnlock()
	ix.reread(ctx, g, added)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for id := range ix.rows {
		if _, ok := slices.BinarySearch(ids, id); !ok {
			delete(ix.rows, id)
		}
	}
	ix.listed = now
	return nil
}

// reread reads ids again (deleted ones leave the index).
func (ix *index) reread(ctx context.Context, g *Grant, ids []string) {
	for _, id := range ids {
		if !policy.ValidID(id) {
			continue
		}
		k, err := g.Admin.Get(ctx, id)
		now := ix.cfg.Now()
		ix.mu.Lock()
		switch {
		case err == nil:
			ix.rows[id] = ix.rowOf(*k, now)
			delete(ix.gone, id)
		case errors.Is(err, keyadmin.ErrNotFound):
			delete(ix.rows, id)
			ix.gone[id] = true
		default:
			ix.rows[id] = ix.rowOf(keyadmin.Key{ID: id, Err: err}, now)
		}
		ix.mu.Unlock()
	}
}

// put records a key the console itself just wrote (or deleted: k nil).
func (ix *index) put(id string, k *keyadmin.Key) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if k == nil {
		delete(ix.rows, id)
		ix.gone[id] = true
		return
	}
	kk := *k
	if old := ix.rows[id]; old != nil && kk.LastUsed.IsZero() {
		kk.LastUsed = old.LastUsed
	}
	ix.rows[id] = ix.rowOf(kk, ix.cfg.Now())
	delete(ix.gone, id)
}

// reaudit recomputes every row's findings at most once a minute (time
// moves keys into "expiring" and "unused"), as new rows.
func (ix *index) reaudit(now time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if now.Sub(ix.findings) < time.Minute {
		return
	}
	for id, old := range ix.rows {
		r := *old
		ix.audit(&r, now)
		ix.rows[id] = &r
	}
	ix.findings = now
}

// audit sets r's findings at now: policy.Audit's, plus "unused", or
// "unreadable".
func (ix *index) audit(r *row, now time.Time) {
	if r.Rec == nil {
		r.Findings = []policy.Finding{{Code: keyadmin.FindingUnreadable, Detail: r.Err}}
		return
	}
	r.Findings = policy.Audit(r.Rec, now, policy.AuditOptions{})
	if u := policy.AuditUnused(r.Rec, r.LastUsed, now, time.Duration(ix.cfg.UnusedDays[1])*24*time.Hour); u != nil {
		r.Findings = append(r.Findings, *u)
	}
}
