package events

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// createdSkew is how far before the last listing a new key's created_at may
// be and still count as created since (the CLI's clock may lag ours).
const createdSkew = time.Minute

// producer is the leader's loop: it reads the journal (or compares the
// file store's keys), lists new keys and scans for time-based events, and
// hands each batch to the senders with the state that covers it.
type producer struct {
	r       *Runner
	st      State // what has been produced (saved once settled)
	known   map[string]bool
	senders []*sender
	commit  chan<- checkpoint
}

func (p *producer) run(ctx context.Context) {
	cfg := p.r.cfg
	poll := time.NewTicker(cfg.JournalPoll)
	defer poll.Stop()
	list := time.NewTicker(cfg.ListInterval)
	defer list.Stop()
	scan := time.NewTicker(cfg.ScanInterval)
	defer scan.Stop()
	p.step(ctx, "scan", p.scan) // also finds what was created while no one sent
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			p.step(ctx, "changes", p.changes)
		case <-list.C:
			if p.r.journal != nil {
				p.step(ctx, "list", p.list)
			}
		case <-scan.C:
			p.step(ctx, "scan", p.scan)
		}
	}
}

// step produces one batch; a failed step produces nothing and leaves the
// state where it was (the next one retries).
func (p *producer) step(ctx context.Context, what string, produce func(context.Context, State) ([]Event, State, error)) {
	evs, st, err := produce(ctx, p.st)
	if err != nil {
		if ctx.Err() == nil {
			p.r.log.Warn("cannot read the keys; retrying", "step", what, "err", err)
		}
		return
	}
	p.st = st
	p.emit(ctx, evs, st)
}

// emit queues evs for every webhook and the checkpoint after them.
func (p *producer) emit(ctx context.Context, evs []Event, st State) {
	t := newTicket(len(evs) * len(p.senders))
	for _, ev := range evs {
		body, err := ev.Marshal()
		if err != nil { // cannot happen: every field is a string, int or []string
			p.r.log.Error("cannot encode an event", "event_id", ev.ID, "err", err)
		}
		for _, s := range p.senders {
			s.enqueue(item{ev: ev, body: body, t: t})
		}
	}
	select {
	case p.commit <- checkpoint{t: t, st: st}:
	case <-ctx.Done():
	}
}

// changes reads what changed since st: the journal, or the file store's
// keys compared with st.Keys.
func (p *producer) changes(ctx context.Context, st State) ([]Event, State, error) {
	if p.r.journal == nil {
		return p.diff(ctx, st)
	}
	start := p.r.now().UTC()
	entries, latest, complete, err := p.r.journal.JournalSince(ctx, st.Journal)
	if err != nil {
		return nil, st, err
	}
	var evs []Event
	if !complete {
		p.r.cfg.Metrics.onGap()
		p.r.log.Warn("the change journal lost entries before they were read (Vault KV max_versions on the journal): "+
			"keys updated since the last read are reported from their records", "from_version", st.Journal, "to_version", latest)
		if evs, err = p.catchUp(ctx, st); err != nil {
			return nil, st, err
		}
	}
	newKeys := false
	for _, e := range entries {
		if e.Op == keyadmin.JournalOpNewKeys {
			newKeys = true
			continue
		}
		for _, id := range e.IDs {
			ev, ok, err := p.journaled(ctx, e, id)
			if err != nil {
				return nil, st, err
			}
			if ok {
				evs = append(evs, ev)
			}
		}
	}
	st.Journal, st.JournalAt = latest, start
	if newKeys { // imported keys: look for them now
		more, next, err := p.list(ctx, st)
		if err != nil {
			return nil, st, err
		}
		evs, st = append(evs, more...), next
	}
	return evs, st, nil
}

// catchUp reports what a gap in the journal hid, from the keys as they are
// now: key.revoked (or key.leaked) for a revoked key, key.updated for
// another, for every key whose updated_at is after the last complete read
// began (less clock skew). The event ids come from the record's
// updated_at, so a new sender repeating the catch-up repeats the ids. A key
// changed several times in the gap gets one event, of its last state; a key
// deleted in the gap gets none (its record is gone).
func (p *producer) catchUp(ctx context.Context, st State) ([]Event, error) {
	if st.JournalAt.IsZero() {
		return nil, nil // no read yet to catch up from
	}
	keys, err := p.r.svc.List(ctx, keyadmin.Filter{})
	if err != nil {
		return nil, err
	}
	since := st.JournalAt.Add(-createdSkew)
	now := p.r.now()
	var evs []Event
	for _, k := range keys {
		if k.Record == nil {
			continue
		}
		updated, err := time.Parse(time.RFC3339, k.Record.UpdatedAt)
		if err != nil || !updated.After(since) {
			continue
		}
		t := KeyUpdated
		if k.Record.Status == policy.StatusRevoked {
			t = revokedType(k.Record)
		}
		evs = append(evs, newEvent(t, k.ID, "gap:"+k.Record.UpdatedAt, updated, k.Record, k.LastUsed, now))
	}
	return evs, nil
}

// journaled is the event of one journaled change of id, with the key as it
// is now.
func (p *producer) journaled(ctx context.Context, e JournalEntry, id string) (Event, bool, error) {
	k, err := p.r.svc.Get(ctx, id)
	gone := errors.Is(err, keyadmin.ErrNotFound)
	switch {
	case errors.Is(err, keyadmin.ErrInvalidRecord):
		p.r.log.Warn("a changed key's record does not parse: no event", "key_id", id, "err", err)
		return Event{}, false, nil
	case err != nil && !gone:
		return Event{}, false, err
	}
	var t Type
	switch {
	case e.Op == keyadmin.JournalOpDelete:
		t = KeyDeleted
	case gone:
		return Event{}, false, nil // deleted since: its delete entry says so
	case e.Op == keyadmin.JournalOpRevoke:
		t = revokedType(k.Record)
	case e.Op == keyadmin.JournalOpRotate:
		t = KeyRotated
	default:
		t = KeyUpdated
	}
	at := e.At
	if at.IsZero() {
		at = p.r.now()
	}
	fact := "j" + strconv.Itoa(e.Version)
	if gone || k == nil {
		return newEvent(t, id, fact, at, nil, time.Time{}, p.r.now()), true, nil
	}
	return newEvent(t, id, fact, at, k.Record, k.LastUsed, p.r.now()), true, nil
}

// list finds keys created since the last listing: ids not seen before
// whose created_at is after it (less createdSkew). Keys created with
// `keys create` are not journaled.
func (p *producer) list(ctx context.Context, st State) ([]Event, State, error) {
	start := p.r.now().UTC()
	ids, err := p.r.svc.IDs(ctx)
	if err != nil {
		return nil, st, err
	}
	known := make(map[string]bool, len(ids))
	var evs []Event
	for _, id := range ids {
		if p.known[id] {
			known[id] = true
			continue
		}
		k, err := p.r.svc.Get(ctx, id)
		switch {
		case errors.Is(err, keyadmin.ErrNotFound), errors.Is(err, keyadmin.ErrInvalidRecord):
			known[id] = true // deleted (Vault still lists it) or unreadable: nothing to say
			continue
		case err != nil:
			return nil, st, err
		}
		known[id] = true
		if ev, ok := p.created(*k, &st); ok {
			evs = append(evs, ev)
		}
	}
	p.known = known
	listed(&st, start)
	return evs, st, nil
}

// created is key.created for k if it was created after st.LastList (less
// createdSkew) and not announced yet; it notes the announcement in
// st.Created.
func (p *producer) created(k keyadmin.Key, st *State) (Event, bool) {
	at, err := time.Parse(time.RFC3339, k.Record.CreatedAt)
	if err != nil || !at.After(st.LastList.Add(-createdSkew)) || !at.After(st.Started.Add(-createdSkew)) {
		return Event{}, false
	}
	if _, done := st.Created[k.ID]; done {
		return Event{}, false
	}
	st.Created = maps.Clone(st.Created)
	if st.Created == nil {
		st.Created = map[string]string{}
	}
	st.Created[k.ID] = k.Record.CreatedAt
	return newEvent(KeyCreated, k.ID, "c"+k.Record.CreatedAt, at, k.Record, k.LastUsed, p.r.now()), true
}

// listed moves st.LastList to at and forgets the announcements it no
// longer needs.
func listed(st *State, at time.Time) {
	st.LastList = at
	for id, c := range st.Created {
		if t, err := time.Parse(time.RFC3339, c); err != nil || !t.After(at.Add(-createdSkew)) {
			st.Created = maps.Clone(st.Created)
			delete(st.Created, id)
		}
	}
}
