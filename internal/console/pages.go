package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vault"
)

// page is what every template gets.
type page struct {
	Title string
	// Refresh, if set, is where the page continues by itself (a meta
	// refresh: a navigation by the console's own page, see oidc.go).
	Refresh string
	Who     *Who
	CSRF    string
	Flash   string
	Error   string
	Data    any
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join":   strings.Join,
	"status": statusOf,
}

func (c *Console) render(w http.ResponseWriter, _ *http.Request, s *session, status int, name, title string, data any) {
	p := page{Title: title, Data: data}
	if name == "continue" {
		p.Refresh = "/"
	}
	if s != nil {
		p.Who, p.CSRF = &s.grant.Who, s.csrf
		s.mu.Lock()
		p.Flash, s.flash = s.flash, ""
		s.mu.Unlock()
	}
	t := c.pages[name]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, p); err != nil {
		c.cfg.Log.Error("console: rendering a page failed", "page", name, "err", err)
	}
}

// renderError shows a failed action's message on a page of its own, with
// the status it deserves.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, action string, err error) {
	status, msg := explain(err)
	c.render(w, r, s, status, "error", action+" failed", errorData{Action: action, Message: msg})
}

type errorData struct{ Action, Message string }

// explain turns an error from keyadmin or the store into a status and a
// message for people: Vault's refusal is named as such.
func explain(err error) (int, string) {
	var ve *vault.Error
	switch {
	case errors.As(err, &ve) && ve.Status == http.StatusForbidden:
		return http.StatusForbidden, "Vault refused this with your credentials (your Vault policy does not allow it): " + err.Error()
	case errors.Is(err, keyadmin.ErrInvalidInput), errors.Is(err, keyadmin.ErrInvalidID):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, keyadmin.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, keyadmin.ErrConflict):
		return http.StatusConflict, err.Error() + " (someone changed it meanwhile: reload and try again)"
	case errors.Is(err, keyadmin.ErrExists):
		return http.StatusConflict, err.Error()
	case errors.As(err, &ve):
		return http.StatusBadGateway, "the key store could not answer: " + err.Error()
	}
	return http.StatusBadRequest, err.Error()
}

// canList: the person's own credentials may list the keys. The index was
// read with someone's credentials; it is shown only to people Vault would
// let list and read them. Checked at most every 30 s per session.
func (c *Console) canList(r *http.Request, s *session) error {
	now := c.cfg.Now()
	s.mu.Lock()
	ok := now.Sub(s.listChecked) < 30*time.Second
	s.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := s.grant.Admin.IDs(r.Context()); err != nil {
		return err
	}
	s.mu.Lock()
	s.listChecked = now
	s.mu.Unlock()
	return nil
}

// fresh brings the index up to date for a page view, or renders why not.
func (c *Console) fresh(w http.ResponseWriter, r *http.Request, s *session) bool {
	if err := c.canList(r, s); err != nil {
		c.renderError(w, r, s, "Listing keys", err)
		return false
	}
	if err := c.index.update(r.Context(), s.grant); err != nil {
		c.cfg.Log.Warn("console: key index refresh failed; showing what it holds", "who", s.grant.Who.Name, "err", err)
		s.mu.Lock()
		s.flash = "The key index could not be refreshed (" + err.Error() + "); it may be out of date."
		s.mu.Unlock()
	}
	return true
}

type overviewData struct {
	summary
	Chart                    *chart
	UnusedDays, ExpiringDays [2]int
	Codes                    []string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.fresh(w, r, s) {
		return
	}
	sum := c.index.summary(c.cfg.Now())
	d := overviewData{summary: sum, UnusedDays: c.cfg.UnusedDays, ExpiringDays: c.cfg.ExpiringDays,
		Chart: c.usageChart(r.Context(), "Checks a second, all keys", `sum by (result) (rate(keygate_checks_total[5m]))`)}
	for code := range sum.Findings {
		d.Codes = append(d.Codes, code)
	}
	sortStrings(d.Codes)
	c.render(w, r, s, http.StatusOK, "overview", "Overview", d)
}

type keysData struct {
	Q        query
	Res      result
	Tenants  []string
	Now      time.Time
	Prev     string
	Next     string
	SortLink map[string]string
	Statuses []string
	Chart    *chart // the tenant's request rate, when one is chosen
}

// listQuery reads the list filters from the URL; a bad value is an error
// naming the parameter.
func listQuery(v url.Values) (query, error) {
	q := query{Q: strings.TrimSpace(v.Get("q")), Status: v.Get("status"), Tenant: v.Get("tenant"),
		Finding: v.Get("finding"), Sort: v.Get("sort"), Page: 1}
	var errs []error
	num := func(name string, dst *int, lo, hi int) {
		if s := v.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < lo || n > hi {
				errs = append(errs, fmt.Errorf("%s %q: want a number %d-%d", name, s, lo, hi))
				return
			}
			*dst = n
		}
	}
	num("page", &q.Page, 1, 1_000_000)
	num("expiring", &q.Expiring, 0, 36500)
	num("unused", &q.Unused, 0, 36500)
	if q.Status != "" {
		if _, err := keyadmin.ParseStatus(q.Status); err != nil {
			errs = append(errs, fmt.Errorf("status %q: want active, revoked or expired", q.Status))
		}
	}
	switch strings.TrimPrefix(q.Sort, "-") {
	case "", "id", "name", "tenant", "owner", "status", "expires", "last_used", "created":
	default:
		errs = append(errs, fmt.Errorf("sort %q: want id, name, tenant, owner, status, expires, last_used or created", q.Sort))
	}
	return q, errors.Join(errs...)
}

func (q query) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Q, "status": q.Status, "tenant": q.Tenant, "finding": q.Finding, "sort": q.Sort} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Expiring > 0 {
		v.Set("expiring", strconv.Itoa(q.Expiring))
	}
	if q.Unused > 0 {
		v.Set("unused", strconv.Itoa(q.Unused))
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return v
}

func (q query) link(change func(*query)) string {
	c := q
	change(&c)
	return "/keys?" + c.values().Encode()
}

func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) {
	q, err := listQuery(r.URL.Query())
	if id, perr := s.grant.Admin.KeyID(q.Q); perr == nil {
		// A pasted key: search by its id, and never render the key.
		http.Redirect(w, r, q.link(func(c *query) { c.Q, c.Page = id, 1 }), http.StatusSeeOther)
		return
	} else if policy.Redact(q.Q) != q.Q {
		c.render(w, r, s, http.StatusBadRequest, "error", "Bad filter", errorData{Action: "Listing keys",
			Message: "q: that looks like an API key: search by its id (the 12 characters after the prefix), not the key"})
		return
	}
	if err != nil {
		c.render(w, r, s, http.StatusBadRequest, "error", "Bad filter", errorData{Action: "Listing keys", Message: err.Error()})
		return
	}
	if !c.fresh(w, r, s) {
		return
	}
	now := c.cfg.Now()
	res := c.index.query(q, c.cfg.PageSize, now)
	d := keysData{Q: q, Res: res, Now: now, Tenants: c.index.tenants(), SortLink: map[string]string{},
		Statuses: []string{"active", "revoked", "expired"}}
	if q.Tenant != "" {
		d.Chart = c.usageChart(r.Context(), "Requests a second, tenant "+q.Tenant,
			`sum by (result) (rate(keygate_key_requests_total{tenant=`+promString(q.Tenant)+`}[5m]))`)
	}
	if res.Page > 1 {
		d.Prev = q.link(func(c *query) { c.Page = res.Page - 1 })
	}
	if res.Page < res.Last {
		d.Next = q.link(func(c *query) { c.Page = res.Page + 1 })
	}
	for _, col := range []string{"id", "name", "tenant", "owner", "status", "expires", "last_used"} {
		d.SortLink[col] = q.link(func(c *query) {
			c.Page, c.Sort = 1, col
			if q.Sort == col {
				c.Sort = "-" + col
			}
		})
	}
	c.render(w, r, s, http.StatusOK, "keys", "Keys", d)
}

type keyData struct {
	Key      *keyadmin.Key
	Status   string
	Findings []policy.Finding
	Shown    *shownKey
	Chain    []string // ids this key was rotated to, in order
	Usage    bool     // the store knows last use
	JSON     string
	Chart    *chart
}

func (c *Console) key(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	k, err := s.grant.Admin.Get(r.Context(), id) // with the person's credentials: Vault decides
	if err != nil {
		if errors.Is(err, keyadmin.ErrNotFound) {
			c.index.put(id, nil)
		}
		c.renderError(w, r, s, "Reading key "+safeID(id), err)
		return
	}
	c.index.put(id, k)
	now := c.cfg.Now()
	d := keyData{Key: k, Status: string(keyadmin.EffectiveStatus(k.Record, now)), Shown: s.takeShown(id),
		Usage: s.grant.Admin.Caps().Usage, JSON: recordJSON(k.Record)}
	d.Findings = policy.Audit(k.Record, now, policy.AuditOptions{})
	if u := policy.AuditUnused(k.Record, k.LastUsed, now, time.Duration(c.cfg.UnusedDays[1])*24*time.Hour); u != nil {
		d.Findings = append(d.Findings, *u)
	}
	for next, seen := k.Record.RotatedTo, 0; next != "" && seen < 10; seen++ {
		d.Chain = append(d.Chain, next)
		nk, err := s.grant.Admin.Get(r.Context(), next)
		if err != nil {
			break
		}
		next = nk.Record.RotatedTo
	}
	d.Chart = c.usageChart(r.Context(), "Requests a second, this key",
		`sum by (result) (rate(keygate_key_requests_total{key_id=`+promString(id)+`}[5m]))`)
	c.render(w, r, s, http.StatusOK, "key", "Key "+id, d)
}

// safeID is id if it is a key id, else a placeholder: a mistyped URL may
// hold a raw key, which must not be echoed.
func safeID(id string) string {
	if policy.ValidID(id) {
		return id
	}
	return "(not a key id)"
}
