package console_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/console"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

const day = 24 * time.Hour

// listFixture is a console with seven keys that differ in every listed
// column, by name.
type listFixture struct {
	*harness
	u    *user
	ids  map[string]string // name → id
	recs map[string]*policy.Record
}

func newListFixture(t *testing.T, pageSize int) *listFixture {
	h := newHarness(t, func(c *console.Config) { c.PageSize = pageSize })
	f := &listFixture{harness: h, ids: map[string]string{}, recs: map[string]*policy.Record{}}
	issue := func(name, tenant, owner string, age time.Duration, fields keyadmin.Fields) {
		h.clock.Set(t0.Add(-age))
		fields.Name, fields.Tenant, fields.Owner = ptr(name), ptr(tenant), ptr(owner)
		f.ids[name] = h.issue(fields).ID
	}
	issue("alpha", "acme", "alice", 0, keyadmin.Fields{ExpiresIn: 3 * day})
	issue("bravo", "acme", "bob", 0, keyadmin.Fields{ExpiresIn: 20 * day})
	issue("charlie", "globex", "carol", 100*day, keyadmin.Fields{})
	issue("delta", "globex", "dave", 0, keyadmin.Fields{ExpiresIn: 10 * day})
	issue("echo", "initech", "erin", 40*day, keyadmin.Fields{ExpiresIn: 500 * day})
	issue("foxtrot", "initech", "frank", 2*day, keyadmin.Fields{ExpiresIn: day})
	issue("golf", "acme", "gina", 0, keyadmin.Fields{ExpiresIn: 60 * day, Scopes: ptr([]string{"orders:*"})})
	h.clock.Set(t0)
	if _, err := h.svc.Revoke(context.Background(), f.ids["delta"], "gone"); err != nil {
		t.Fatal(err)
	}
	for name, id := range f.ids {
		f.recs[name] = h.record(id)
	}
	f.u = h.signedIn()
	return f
}

// names are the names of ids, in order.
func (f *listFixture) names(ids []string) []string {
	var out []string
	for _, id := range ids {
		for n, i := range f.ids {
			if i == id {
				out = append(out, n)
			}
		}
	}
	return out
}

// Search and filters select exactly the matching keys.
func TestListFilters(t *testing.T) {
	f := newListFixture(t, 50)
	tests := []struct {
		query string
		want  []string // names, sorted
	}{
		{"", []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}},
		{"q=ALPH", []string{"alpha"}},
		{"q=globex", []string{"charlie", "delta"}},
		{"q=carol", []string{"charlie"}},
		{"q=" + f.ids["echo"][2:9], []string{"echo"}},
		{"q=+nothing+matches+", nil},
		{"status=active", []string{"alpha", "bravo", "charlie", "echo", "golf"}},
		{"status=revoked", []string{"delta"}},
		{"status=expired", []string{"foxtrot"}},
		{"tenant=acme", []string{"alpha", "bravo", "golf"}},
		{"tenant=initech&status=active", []string{"echo"}},
		{"expiring=7", []string{"alpha"}},
		{"expiring=30", []string{"alpha", "bravo"}},
		{"unused=90", []string{"charlie"}},
		{"unused=30", []string{"charlie", "echo"}},
		{"finding=no_expiry", []string{"charlie"}},
		{"finding=wildcard_scope", []string{"golf"}},
		{"finding=long_lived", []string{"echo"}},
		{"finding=expired_active", []string{"foxtrot"}},
		{"finding=unused", []string{"charlie"}},
		{"finding=any", []string{"charlie", "echo", "foxtrot", "golf"}},
		{"tenant=acme&status=active&q=a&expiring=30", []string{"alpha", "bravo"}},
	}
	for _, tt := range tests {
		body := f.u.mustGet("/keys?" + tt.query)
		got := f.names(listedIDs(body))
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("/keys?%s lists %v, want %v", tt.query, got, tt.want)
		}
		if total := fmt.Sprintf(`<p id="total">%d keys</p>`, len(tt.want)); !strings.Contains(body, total) {
			t.Errorf("/keys?%s: no %q", tt.query, total)
		}
	}
	// The overview counts the same keys.
	body := f.u.mustGet("/")
	for id, n := range map[string]int{"count-total": 7, "count-active": 5, "count-revoked": 1, "count-expired": 1, "count-expiring-0": 1} {
		if w := fmt.Sprintf(`id="%s">%d<`, id, n); !strings.Contains(body, w) {
			t.Errorf("overview lacks %s:\n%s", w, body)
		}
	}
}

// Every column sorts both ways, ties by id.
func TestListSort(t *testing.T) {
	f := newListFixture(t, 50)
	column := map[string]func(name string) string{
		"id":        func(n string) string { return f.ids[n] },
		"name":      func(n string) string { return n },
		"tenant":    func(n string) string { return f.recs[n].Tenant },
		"owner":     func(n string) string { return f.recs[n].Owner },
		"status":    func(n string) string { return string(keyadmin.EffectiveStatus(f.recs[n], t0)) },
		"expires":   func(n string) string { return f.recs[n].ExpiresAt },
		"created":   func(n string) string { return f.recs[n].CreatedAt },
		"last_used": func(string) string { return "" }, // the file store knows no use
	}
	for col, value := range column {
		for _, desc := range []bool{false, true} {
			sort := col
			if desc {
				sort = "-" + col
			}
			body := f.u.mustGet("/keys?sort=" + sort)
			names := f.names(listedIDs(body))
			if len(names) != 7 {
				t.Fatalf("sort=%s lists %v", sort, names)
			}
			for i := 1; i < len(names); i++ {
				a, b := value(names[i-1]), value(names[i])
				ok := a < b || a == b && f.ids[names[i-1]] < f.ids[names[i]]
				if desc {
					ok = a > b || a == b && f.ids[names[i-1]] < f.ids[names[i]]
				}
				if !ok {
					t.Errorf("sort=%s: %s (%q) before %s (%q): %v", sort, names[i-1], a, names[i], b, names)
				}
			}
			if col == "created" { // no column link
				continue
			}
			// The column's link reverses the order; the others sort ascending.
			want := `<a href="/keys?sort=-` + col + `">`
			if desc {
				want = `<a href="/keys?sort=` + col + `">`
			}
			if !strings.Contains(body, want) || !strings.Contains(body, `<a href="/keys?sort=name">name</a>`) && col != "name" {
				t.Errorf("sort=%s: the sort links are wrong (want %s)", sort, want)
			}
		}
	}
	if names := f.names(listedIDs(f.u.mustGet("/keys?sort=name"))); !slices.Equal(names, []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}) {
		t.Errorf("sort=name = %v", names)
	}
	if names := f.names(listedIDs(f.u.mustGet("/keys?sort=-expires"))); names[0] != "echo" || names[6] != "charlie" {
		t.Errorf("sort=-expires = %v, want echo (latest) first, charlie (never) last", names)
	}
}

// Pages hold PageSize keys; the links keep the filters; a page past the
// end is the last page.
func TestListPaging(t *testing.T) {
	f := newListFixture(t, 3)
	var all []string
	for page, want := range []struct {
		rows       int
		prev, next string
	}{
		{3, "", "/keys?page=2&sort=name"},
		{3, "/keys?sort=name", "/keys?page=3&sort=name"},
		{1, "/keys?page=2&sort=name", ""},
	} {
		body := f.u.mustGet(fmt.Sprintf("/keys?sort=name&page=%d", page+1))
		ids := listedIDs(body)
		all = append(all, ids...)
		if len(ids) != want.rows || !strings.Contains(body, fmt.Sprintf("7 keys, page %d of 3", page+1)) {
			t.Errorf("page %d: %d rows, want %d:\n%s", page+1, len(ids), want.rows, body)
		}
		for rel, link := range map[string]string{"prev": want.prev, "next": want.next} {
			tag := `rel="` + rel + `"`
			if link == "" && strings.Contains(body, tag) || link != "" && !strings.Contains(body, `<a href="`+link+`" `+tag) {
				t.Errorf("page %d: %s link, want %q", page+1, rel, link)
			}
		}
	}
	if names := f.names(all); !slices.Equal(names, []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}) {
		t.Errorf("pages hold %v, want every key once, by name", names)
	}
	body := f.u.mustGet("/keys?sort=name&page=99")
	if names := f.names(listedIDs(body)); !slices.Equal(names, []string{"golf"}) || !strings.Contains(body, "page 3 of 3") {
		t.Errorf("page 99 = %v, want the last page", names)
	}
	body = f.u.mustGet("/keys?status=active&q=o&page=1&sort=-name") // golf, echo, charlie, bravo
	if !strings.Contains(body, `<a href="/keys?page=2&q=o&sort=-name&status=active" rel="next">`) {
		t.Errorf("the next link drops the filters:\n%s", body)
	}
}

// A bad filter value answers 400 naming the parameter (every bad one).
func TestListBadFilter(t *testing.T) {
	f := newListFixture(t, 50)
	tests := []struct {
		query string
		want  []string
	}{
		{"page=abc", []string{`page "abc": want a number 1-1000000`}},
		{"page=0", []string{`page "0": want a number 1-1000000`}},
		{"page=-1", []string{`page "-1": want a number 1-1000000`}},
		{"status=bogus", []string{`status "bogus": want active, revoked or expired`}},
		{"sort=bogus", []string{`sort "bogus": want id, name, tenant, owner, status, expires, last_used or created`}},
		{"sort=--name", []string{`sort "--name"`}},
		{"expiring=soon", []string{`expiring "soon": want a number 0-36500`}},
		{"unused=36501", []string{`unused "36501": want a number 0-36500`}},
		{"page=abc&status=bogus&sort=bogus", []string{`page "abc"`, `status "bogus"`, `sort "bogus"`}},
	}
	for _, tt := range tests {
		resp, body := f.u.get("/keys?" + tt.query)
		status(t, resp, body, http.StatusBadRequest, append([]string{"Bad filter", "Listing keys:"}, tt.want...)...)
	}
}
