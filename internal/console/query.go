package console

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Reading the index: a page of keys (query) and the overview's counts
// (summary). Both work on the rows under the index's read lock.

// query selects, sorts and pages the index.
type query struct {
	Q        string // substring of id, name, owner or tenant (case-insensitive)
	Status   string // active, revoked, expired, or ""
	Tenant   string // exact tenant, or ""
	Expiring int    // > 0: active keys expiring within this many days
	Unused   int    // > 0: active keys not used for this many days (never used: since created)
	Finding  string // a finding code, "any", or ""
	Sort     string // id, name, tenant, owner, status, expires, last_used, created (a leading - reverses)
	Page     int    // 1-based
}

type result struct {
	Rows       []*row
	Total      int // matching keys
	Page, Last int
}

func (ix *index) query(q query, pageSize int, now time.Time) result {
	ix.mu.RLock()
	match := make([]*row, 0, len(ix.rows))
	lower := strings.ToLower(q.Q)
	for _, r := range ix.rows {
		if q.keep(r, lower, now) {
			match = append(match, r)
		}
	}
	ix.mu.RUnlock()
	sortRows(match, q.Sort, now)
	res := result{Total: len(match), Page: max(q.Page, 1), Last: max((len(match)+pageSize-1)/pageSize, 1)}
	res.Page = min(res.Page, res.Last)
	from := (res.Page - 1) * pageSize
	res.Rows = match[from:min(from+pageSize, len(match))]
	return res
}

func (q query) keep(r *row, lower string, now time.Time) bool {
	if lower != "" && !strings.Contains(strings.ToLower(r.ID), lower) && (r.Rec == nil ||
		!strings.Contains(strings.ToLower(r.Rec.Name), lower) && !strings.Contains(strings.ToLower(r.Rec.Owner), lower) &&
			!strings.Contains(strings.ToLower(r.Rec.Tenant), lower)) {
		return false
	}
	if q.Finding != "" && !hasFinding(r, q.Finding) {
		return false
	}
	if q.Status == "" && q.Tenant == "" && q.Expiring == 0 && q.Unused == 0 {
		return true
	}
	if r.Rec == nil {
		return false
	}
	st := keyadmin.EffectiveStatus(r.Rec, now)
	switch {
	case q.Status != "" && string(st) != q.Status,
		q.Tenant != "" && r.Rec.Tenant != q.Tenant:
		return false
	case q.Expiring > 0:
		exp := r.Rec.ExpiresAtTime()
		if st != keyadmin.Active || exp.IsZero() || exp.After(now.Add(time.Duration(q.Expiring)*24*time.Hour)) {
			return false
		}
	}
	if q.Unused > 0 {
		since := r.LastUsed
		if since.IsZero() {
			since, _ = time.Parse(time.RFC3339, r.Rec.CreatedAt)
		}
		if st != keyadmin.Active || since.IsZero() || since.After(now.Add(-time.Duration(q.Unused)*24*time.Hour)) {
			return false
		}
	}
	return true
}

func hasFinding(r *row, code string) bool {
	if code == "any" {
		return len(r.Findings) > 0
	}
	return slices.ContainsFunc(r.Findings, func(f policy.Finding) bool { return f.Code == code })
}

func sortRows(rows []*row, by string, now time.Time) {
	desc := strings.HasPrefix(by, "-")
	by = strings.TrimPrefix(by, "-")
	text := func(r *row, f func(*policy.Record) string) string {
		if r.Rec == nil {
			return ""
		}
		return f(r.Rec)
	}
	key := func(a, b *row) int {
		switch by {
		case "id":
			return cmp.Compare(a.ID, b.ID)
		case "name":
			return cmp.Compare(text(a, func(r *policy.Record) string { return r.Name }), text(b, func(r *policy.Record) string { return r.Name }))
		case "tenant":
			return cmp.Compare(text(a, func(r *policy.Record) string { return r.Tenant }), text(b, func(r *policy.Record) string { return r.Tenant }))
		case "owner":
			return cmp.Compare(text(a, func(r *policy.Record) string { return r.Owner }), text(b, func(r *policy.Record) string { return r.Owner }))
		case "status":
			return cmp.Compare(statusOf(a, now), statusOf(b, now))
		case "expires":
			return cmp.Compare(text(a, func(r *policy.Record) string { return r.ExpiresAt }), text(b, func(r *policy.Record) string { return r.ExpiresAt }))
		case "created":
			return cmp.Compare(text(a, func(r *policy.Record) string { return r.CreatedAt }), text(b, func(r *policy.Record) string { return r.CreatedAt }))
		case "last_used":
			return a.LastUsed.Compare(b.LastUsed)
		}
		return 0
	}
	slices.SortFunc(rows, func(a, b *row) int {
		c := key(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.ID, b.ID))
	})
}

func statusOf(r *row, now time.Time) string {
	if r.Rec == nil {
		return "unreadable"
	}
	return string(keyadmin.EffectiveStatus(r.Rec, now))
}

// tenants are the tenants of the indexed keys, sorted.
func (ix *index) tenants() []string {
	ix.mu.RLock()
	set := map[string]bool{}
	for _, r := range ix.rows {
		if r.Rec != nil {
			set[r.Rec.Tenant] = true
		}
	}
	ix.mu.RUnlock()
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// summary is the overview's counts.
type summary struct {
	Total, Active, Revoked, Expired, Unreadable int
	Expiring, Unused                            [2]int
	Findings                                    map[string]int
	Tenants                                     []string
	Loaded                                      time.Time
	LoadErr                                     string
}

func (ix *index) summary(now time.Time) summary {
	s := summary{Findings: map[string]int{}}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	tenants := map[string]bool{}
	for _, r := range ix.rows {
		s.Total++
		for _, f := range r.Findings {
			s.Findings[f.Code]++
		}
		if r.Rec == nil {
			s.Unreadable++
			continue
		}
		tenants[r.Rec.Tenant] = true
		switch keyadmin.EffectiveStatus(r.Rec, now) {
		case keyadmin.Active:
			s.Active++
		case keyadmin.Revoked:
			s.Revoked++
		case keyadmin.Expired:
			s.Expired++
		}
		for i, d := range ix.cfg.ExpiringDays {
			if (query{Expiring: d}).keep(r, "", now) {
				s.Expiring[i]++
			}
		}
		for i, d := range ix.cfg.UnusedDays {
			if (query{Unused: d}).keep(r, "", now) {
				s.Unused[i]++
			}
		}
	}
	for t := range tenants {
		s.Tenants = append(s.Tenants, t)
	}
	slices.Sort(s.Tenants)
	s.Loaded = ix.loaded
	if ix.loadErr != nil {
		s.LoadErr = ix.loadErr.Error()
	}
	return s
}
