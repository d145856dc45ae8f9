package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

const day = 24 * time.Hour

// scan reads every key and produces the time-based events whose threshold
// falls in (st.LastScan, now]; with a journal it also finds keys created
// since the last listing (and so learns every id).
func (p *producer) scan(ctx context.Context, st State) ([]Event, State, error) {
	now := p.r.now().UTC()
	keys, err := p.r.svc.List(ctx, keyadmin.Filter{})
	if err != nil {
		return nil, st, err
	}
	var evs []Event
	var revoke []string
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k.Record == nil {
			continue
		}
		known[k.ID] = true
		if p.r.journal != nil && !p.known[k.ID] {
			if ev, ok := p.created(k, &st); ok {
				evs = append(evs, ev)
			}
		}
		more, disable := p.r.timeEvents(k, st, now)
		evs = append(evs, more...)
		if disable {
			revoke = append(revoke, k.ID)
		}
	}
	for _, id := range revoke {
		// Journaled: the revocation comes back as key.revoked (reason "unused").
		if _, err := p.r.svc.Revoke(ctx, id, UnusedReason); err != nil {
			return nil, st, err
		}
		p.r.log.Info("revoked an unused key (--auto-disable-unused)", "key_id", id)
	}
	if p.r.journal != nil {
		p.known = known
		listed(&st, now)
	}
	st.LastScan = now
	return evs, st, nil
}

// timeEvents are k's time-based events for the window (st.LastScan, now],
// and whether to auto-disable it. A key whose several thresholds passed in
// one window (no sender for a while) gets only the latest news: expired
// rather than expiring, the most imminent expiring threshold.
func (r *Runner) timeEvents(k keyadmin.Key, st State, now time.Time) ([]Event, bool) {
	rec := k.Record
	in := func(t time.Time) bool { return t.After(st.LastScan) && !t.After(now) }
	if rec.Status != policy.StatusActive {
		return nil, false
	}
	var evs []Event
	exp := rec.ExpiresAtTime()
	switch {
	case exp.IsZero():
	case in(exp):
		return []Event{newEvent(KeyExpired, k.ID, "e"+rec.ExpiresAt, exp, rec, k.LastUsed, now)}, false
	case !now.Before(exp):
		return nil, false // expired before the window
	default:
		for _, d := range r.cfg.expiringDays() {
			if at := exp.Add(-time.Duration(d) * day); in(at) {
				ev := newEvent(KeyExpiring, k.ID, "x"+rec.ExpiresAt+"/"+strconv.Itoa(d), at, rec, k.LastUsed, now)
				ev.Data.Days = d
				evs = append(evs, ev)
				break
			}
		}
	}
	if r.cfg.UnusedFor <= 0 || k.UsageErr != nil {
		return evs, false
	}
	since, known := policy.UnusedSince(rec, k.LastUsed)
	if !known {
		return evs, false
	}
	idle := since.Add(r.cfg.UnusedFor)
	if in(idle) && idle.After(st.Started) {
		ev := newEvent(KeyUnused, k.ID, "u"+idle.UTC().Format(time.RFC3339), idle, rec, k.LastUsed, now)
		ev.Data.IdleDays = int(r.cfg.UnusedFor / day)
		evs = append(evs, ev)
	}
	disable := r.cfg.AutoDisable && in(idle.Add(r.cfg.AutoDisableGrace)) && idle.After(st.Started)
	return evs, disable
}

// diff is changes for a store without a journal (the file store): every
// key is compared with st.Keys.
func (p *producer) diff(ctx context.Context, st State) ([]Event, State, error) {
	keys, err := p.r.svc.List(ctx, keyadmin.Filter{})
	if err != nil {
		return nil, st, err
	}
	now := p.r.now().UTC()
	cur := summarize(keys)
	var evs []Event
	for _, k := range keys {
		c, ok := cur[k.ID]
		if !ok { // unreadable now: keep what it was (it is not deleted)
			if prev, seen := st.Keys[k.ID]; seen {
				cur[k.ID] = prev
			}
			continue
		}
		prev, seen := st.Keys[k.ID]
		if seen && prev == c {
			continue
		}
		at := now
		if t, err := time.Parse(time.RFC3339, k.Record.UpdatedAt); err == nil {
			at = t
		}
		if !seen {
			created := at
			if t, err := time.Parse(time.RFC3339, k.Record.CreatedAt); err == nil {
				created = t
			}
			// Its id comes from created_at, as Vault's does: a repeat after a
			// failover has the same id even if the key changed since.
			evs = append(evs, newEvent(KeyCreated, k.ID, "c"+k.Record.CreatedAt, created, k.Record, k.LastUsed, now))
		}
		for _, t := range changeTypes(prev, c, k.Record, seen) {
			evs = append(evs, newEvent(t, k.ID, "h"+c.Hash, at, k.Record, k.LastUsed, now))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(st.Keys)) {
		if _, ok := cur[id]; !ok {
			evs = append(evs, newEvent(KeyDeleted, id, "d"+st.Keys[id].Hash, now, nil, time.Time{}, now))
		}
	}
	st.Keys = cur
	return evs, st, nil
}

// changeTypes are the events, after key.created for a key not seen before,
// of a key's change from prev to cur (rec), in the order they happen: a
// rotation, then a revocation (key.revoked or key.leaked); key.updated when
// neither, unless the key is new. Changes within one poll coalesce, but a
// revocation is never hidden behind another event.
func changeTypes(prev, cur keySum, rec *policy.Record, seen bool) []Type {
	var out []Type
	if cur.RotatedTo != "" && prev.RotatedTo == "" {
		out = append(out, KeyRotated)
	}
	if cur.Status == policy.StatusRevoked && prev.Status != policy.StatusRevoked {
		out = append(out, revokedType(rec))
	}
	if len(out) == 0 && seen {
		out = append(out, KeyUpdated)
	}
	return out
}

// summarize is what change detection keeps of each readable key.
func summarize(keys []keyadmin.Key) map[string]keySum {
	out := make(map[string]keySum, len(keys))
	for _, k := range keys {
		if k.Record == nil {
			continue
		}
		b, _ := json.Marshal(k.Record)
		h := sha256.Sum256(b)
		out[k.ID] = keySum{Hash: hex.EncodeToString(h[:8]), Status: k.Record.Status, RotatedTo: k.Record.RotatedTo}
	}
	return out
}
