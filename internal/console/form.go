package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// keyForm is the create and edit form, as typed. Field names are the
// record's (and the form inputs'); errors name them.
type keyForm struct {
	Name, Tenant, Owner             string
	Scopes, CIDRs, Referrers, Hosts string // separated by spaces, commas or lines
	Headers, Metadata               string // NAME=VALUE lines
	ExpiresIn, ExpiresAt, NotBefore string
	RateLimit, RateBurst, Quota     string
	GlobalRateLimit, GlobalQuota    string
	editing                         bool
	origHeaders, origMeta           map[string]string
}

func formOf(v url.Values) keyForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return keyForm{Name: g("name"), Tenant: g("tenant"), Owner: g("owner"), Scopes: g("scopes"), CIDRs: g("allowed_cidrs"),
		Referrers: g("allowed_referrers"), Hosts: g("allowed_hosts"), Headers: g("headers"), Metadata: g("metadata"),
		ExpiresIn: g("expires_in"), ExpiresAt: g("expires_at"), NotBefore: g("not_before"), RateLimit: g("rate_limit"),
		RateBurst: g("rate_burst"), Quota: g("quota"), GlobalRateLimit: g("global_rate_limit"), GlobalQuota: g("global_quota")}
}

// formFromRecord fills the edit form with a record's current values.
func formFromRecord(rec *policy.Record) keyForm {
	f := keyForm{Name: rec.Name, Tenant: rec.Tenant, Owner: rec.Owner, Scopes: strings.Join(rec.Scopes, " "),
		CIDRs: strings.Join(rec.AllowedCIDRs, " "), Referrers: strings.Join(rec.AllowedReferrers, " "),
		Hosts: strings.Join(rec.AllowedHosts, " "), Headers: pairsText(rec.Headers), Metadata: pairsText(rec.Metadata),
		ExpiresAt: rec.ExpiresAt, NotBefore: rec.NotBefore, editing: true, origHeaders: rec.Headers, origMeta: rec.Metadata}
	if l := rec.RateLimit; l != nil {
		f.RateLimit = fmt.Sprintf("%d/%s", l.Requests, l.Per)
		if l.Burst > 0 {
			f.RateBurst = fmt.Sprint(l.Burst)
		}
	}
	if q := rec.Quota; q != nil {
		f.Quota = fmt.Sprintf("%d/%s", q.Requests, q.Per)
	}
	if l := rec.GlobalRateLimit; l != nil {
		f.GlobalRateLimit = fmt.Sprintf("%d/%s", l.Requests, l.Per)
	}
	if q := rec.GlobalQuota; q != nil {
		f.GlobalQuota = fmt.Sprintf("%d/%s", q.Requests, q.Per)
	}
	return f
}

func pairsText(m map[string]string) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, k+"="+v)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// fields turns the form into keyadmin.Fields. For a new key every field
// is set as typed; for an edit (orig: the record as the form showed it)
// the whole form is the new state: emptied fields are cleared, removed
// header and metadata lines removed. Every problem is reported, each
// naming its field; values are never echoed (a pasted key stays unseen).
func (f keyForm) fields(now time.Time) (keyadmin.Fields, error) {
	var out keyadmin.Fields
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("%s: %s", field, policy.Redact(msg))) } // parse errors quote the value
	out.Name, out.Tenant, out.Owner = &f.Name, &f.Tenant, &f.Owner
	for _, l := range []struct {
		v   string
		dst **[]string
	}{{f.Scopes, &out.Scopes}, {f.CIDRs, &out.AllowedCIDRs}, {f.Referrers, &out.AllowedReferrers}, {f.Hosts, &out.AllowedHosts}} {
		v := list(l.v)
		if v == nil {
			v = []string{}
		}
		*l.dst = &v
	}
	out.SetHeaders = pairLines(bad, "headers", f.Headers)
	out.SetMetadata = pairLines(bad, "metadata", f.Metadata)
	if f.editing {
		for k := range f.origHeaders {
			if _, ok := out.SetHeaders[k]; !ok {
				out.RemoveHeaders = append(out.RemoveHeaders, k)
			}
		}
		for k := range f.origMeta {
			if _, ok := out.SetMetadata[k]; !ok {
				out.RemoveMetadata = append(out.RemoveMetadata, k)
			}
		}
	}
	f.times(bad, &out)
	f.limits(bad, &out)
	return out, errors.Join(errs...)
}

func pairLines(bad func(string, string), field, text string) map[string]string {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			bad(field, fmt.Sprintf("line %d: want NAME=VALUE", i+1))
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

func (f keyForm) times(bad func(string, string), out *keyadmin.Fields) {
	parse := func(field, s string) *time.Time {
		if s == "" {
			return &time.Time{}
		}
		t, err := time.Parse(time.RFC3339, s)
		switch {
		case err != nil:
			bad(field, "want an RFC 3339 time like 2027-01-02T15:04:05Z")
			return nil
		case t.IsZero(): // would read as "none", not as that instant
			bad(field, "the zero time reads as unset: give a real time, or leave the field empty")
			return nil
		}
		return &t
	}
	out.NotBefore = parse("not_before", f.NotBefore)
	switch {
	case f.ExpiresIn != "" && f.ExpiresAt != "":
		bad("expires_in", "give expires_in or expires_at, not both")
	case f.ExpiresIn != "":
		d, err := keyadmin.ParseLifetime(f.ExpiresIn)
		if err != nil {
			bad("expires_in", err.Error())
		}
		out.ExpiresIn = d
	default:
		out.ExpiresAt = parse("expires_at", f.ExpiresAt)
	}
}

func (f keyForm) limits(bad func(string, string), out *keyadmin.Fields) {
	rate := func(field, s string) (int, string, bool) {
		n, per, err := policy.ParseRate(s)
		if err != nil {
			bad(field, err.Error())
			return 0, "", false
		}
		return n, per, true
	}
	burst := 0
	if f.RateBurst != "" {
		if _, err := fmt.Sscan(f.RateBurst, &burst); err != nil || burst < 1 {
			bad("rate_burst", "want a whole number >= 1")
		}
	}
	switch {
	case f.RateLimit == "" && f.RateBurst != "":
		bad("rate_burst", "only with a rate_limit")
	case f.RateLimit == "":
		out.RemoveRateLimit = f.editing
	default:
		if n, per, ok := rate("rate_limit", f.RateLimit); ok {
			out.RateLimit = &policy.RateLimit{Requests: n, Per: per, Burst: burst}
		}
	}
	if f.Quota == "" {
		out.RemoveQuota = f.editing
	} else if n, per, ok := rate("quota", f.Quota); ok {
		out.Quota = &policy.Quota{Requests: n, Per: per}
	}
	if f.GlobalRateLimit == "" {
		out.RemoveGlobalRateLimit = f.editing
	} else if n, per, ok := rate("global_rate_limit", f.GlobalRateLimit); ok {
		out.GlobalRateLimit = &policy.RateLimit{Requests: n, Per: per}
	}
	if f.GlobalQuota == "" {
		out.RemoveGlobalQuota = f.editing
	} else if n, per, ok := rate("global_quota", f.GlobalQuota); ok {
		out.GlobalQuota = &policy.Quota{Requests: n, Per: per}
	}
}

// recordJSON is the record as stored, for the detail page.
func recordJSON(rec *policy.Record) string {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

func sortStrings(s []string) { slices.Sort(s) }
