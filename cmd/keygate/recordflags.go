package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// recordFlags set key record fields from the command line (create, update).
type recordFlags struct {
	fs                          *pflag.FlagSet
	name, tenant, owner         string
	scopes, cidrs, refs, hosts  []string
	headers, metadata           []string
	expiresIn                   string
	expiresAt, notBefore        string
	removeHeaders, removeMeta   []string
	noExpiry                    bool
	rate, quota                 string
	burst                       int
	noRate, noQuota             bool
	globalRate, globalQuota     string
	noGlobalRate, noGlobalQuota bool
}

func (r *recordFlags) register(fs *pflag.FlagSet, forUpdate bool) {
	r.fs = fs
	fs.StringVar(&r.name, "name", "", "human label")
	fs.StringVar(&r.tenant, "tenant", "", "tenant, sent upstream as x-keygate-tenant (required for create)")
	fs.StringVar(&r.owner, "owner", "", "team or person responsible for the key")
	fs.StringSliceVar(&r.scopes, "scopes", nil, "scopes the key grants (comma-separated or repeated)")
	fs.StringSliceVar(&r.cidrs, "cidrs", nil, "allowed source CIDRs or IPs (default: any)")
	fs.StringSliceVar(&r.refs, "referrers", nil, "allowed Origin/Referer origins, e.g. https://app.example.com (default: any)")
	fs.StringSliceVar(&r.hosts, "hosts", nil, "allowed request hosts, e.g. api.example.com or *.example.com (default: any)")
	fs.StringArrayVar(&r.headers, "header", nil, "header added upstream on allow, NAME=VALUE (repeatable)")
	fs.StringArrayVar(&r.metadata, "metadata", nil, "free-form metadata, KEY=VALUE (repeatable)")
	fs.StringVar(&r.expiresIn, "expires-in", "", "lifetime from now, e.g. 90d, 12h")
	fs.StringVar(&r.expiresAt, "expires-at", "", "expiry time, RFC 3339")
	fs.StringVar(&r.notBefore, "not-before", "", "start of validity, RFC 3339")
	fs.StringVar(&r.rate, "rate-limit", "", "requests per unit for this key, per replica, e.g. 100/s, 6000/minute")
	fs.IntVar(&r.burst, "rate-burst", 0, "burst over --rate-limit (default: the limit's requests)")
	fs.StringVar(&r.quota, "quota", "", "requests per fixed UTC window, per replica, e.g. 10000/day, 500/hour")
	fs.StringVar(&r.globalRate, "global-rate-limit", "", "requests per fixed UTC window of one unit across every replica "+
		"(keygate serve --ratelimit-service), e.g. 100/minute; no burst")
	fs.StringVar(&r.globalQuota, "global-quota", "", "requests per fixed UTC window across every replica, e.g. 10000/day")
	if forUpdate {
		fs.BoolVar(&r.noRate, "no-rate-limit", false, "remove the rate limit")
		fs.BoolVar(&r.noQuota, "no-quota", false, "remove the quota")
		fs.BoolVar(&r.noGlobalRate, "no-global-rate-limit", false, "remove the global rate limit")
		fs.BoolVar(&r.noGlobalQuota, "no-global-quota", false, "remove the global quota")
		fs.StringArrayVar(&r.removeHeaders, "remove-header", nil, "header name to stop adding (repeatable)")
		fs.StringArrayVar(&r.removeMeta, "remove-metadata", nil, "metadata key to remove (repeatable)")
		fs.BoolVar(&r.noExpiry, "no-expiry", false, "remove the expiry")
	}
}

// fields turns the flags that were given into record fields, reporting
// every bad flag at once. The record rules (what may be combined with the
// stored record, validation) are keyadmin's.
func (r *recordFlags) fields() (keyadmin.Fields, error) {
	var f keyadmin.Fields
	var errs []error
	set := r.fs.Changed
	for _, s := range []struct {
		flag string
		v    *string
		dst  **string
	}{{"name", &r.name, &f.Name}, {"tenant", &r.tenant, &f.Tenant}, {"owner", &r.owner, &f.Owner}} {
		if set(s.flag) {
			*s.dst = s.v
		}
	}
	for _, l := range []struct {
		flag string
		v    []string
		dst  **[]string
	}{{"scopes", r.scopes, &f.Scopes}, {"cidrs", r.cidrs, &f.AllowedCIDRs}, {"referrers", r.refs, &f.AllowedReferrers}, {"hosts", r.hosts, &f.AllowedHosts}} {
		if set(l.flag) {
			v := nonEmpty(l.v)
			*l.dst = &v
		}
	}
	f.SetHeaders, f.RemoveHeaders = pairs(&errs, "--header", r.headers), r.removeHeaders
	f.SetMetadata, f.RemoveMetadata = pairs(&errs, "--metadata", r.metadata), r.removeMeta
	if set("not-before") {
		f.NotBefore = checkTime(&errs, "--not-before", r.notBefore)
	}
	r.expiry(&errs, &f)
	r.limits(&errs, &f)
	return f, errors.Join(errs...)
}

// expiry reads --expires-in, --expires-at and --no-expiry.
func (r *recordFlags) expiry(errs *[]error, f *keyadmin.Fields) {
	set := r.fs.Changed
	switch {
	case set("expires-in") && set("expires-at"), r.noExpiry && (set("expires-in") || set("expires-at")):
		*errs = append(*errs, errors.New("--expires-in, --expires-at and --no-expiry: give one at most"))
	case set("expires-in"):
		d, err := keyadmin.ParseLifetime(r.expiresIn)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("--expires-in: %w", err))
		}
		f.ExpiresIn = d
	case set("expires-at"):
		f.ExpiresAt = checkTime(errs, "--expires-at", r.expiresAt)
	case r.noExpiry:
		f.ExpiresAt = &time.Time{}
	}
}

// limits reads the rate limit and quota flags.
func (r *recordFlags) limits(errs *[]error, f *keyadmin.Fields) {
	set := r.fs.Changed
	switch {
	case r.noRate && (set("rate-limit") || set("rate-burst")):
		*errs = append(*errs, errors.New("--no-rate-limit with --rate-limit or --rate-burst: give one"))
	case r.noRate:
		f.RemoveRateLimit = true
	case set("rate-limit"):
		if n, per, err := policy.ParseRate(r.rate); err != nil {
			*errs = append(*errs, fmt.Errorf("--rate-limit: %w", err))
		} else {
			f.RateLimit = &policy.RateLimit{Requests: n, Per: per, Burst: r.burst}
		}
	case set("rate-burst"):
		f.RateBurst = &r.burst
	}
	switch {
	case r.noQuota && set("quota"):
		*errs = append(*errs, errors.New("--no-quota with --quota: give one"))
	case r.noQuota:
		f.RemoveQuota = true
	case set("quota"):
		if n, per, err := policy.ParseRate(r.quota); err != nil {
			*errs = append(*errs, fmt.Errorf("--quota: %w", err))
		} else {
			f.Quota = &policy.Quota{Requests: n, Per: per}
		}
	}
	r.globalLimits(errs, f)
}

// globalLimits reads the global rate limit and quota flags.
func (r *recordFlags) globalLimits(errs *[]error, f *keyadmin.Fields) {
	set := r.fs.Changed
	switch {
	case r.noGlobalRate && set("global-rate-limit"):
		*errs = append(*errs, errors.New("--no-global-rate-limit with --global-rate-limit: give one"))
	case r.noGlobalRate:
		f.RemoveGlobalRateLimit = true
	case set("global-rate-limit"):
		if n, per, err := policy.ParseRate(r.globalRate); err != nil {
			*errs = append(*errs, fmt.Errorf("--global-rate-limit: %w", err))
		} else {
			f.GlobalRateLimit = &policy.RateLimit{Requests: n, Per: per}
		}
	}
	switch {
	case r.noGlobalQuota && set("global-quota"):
		*errs = append(*errs, errors.New("--no-global-quota with --global-quota: give one"))
	case r.noGlobalQuota:
		f.RemoveGlobalQuota = true
	case set("global-quota"):
		if n, per, err := policy.ParseRate(r.globalQuota); err != nil {
			*errs = append(*errs, fmt.Errorf("--global-quota: %w", err))
		} else {
			f.GlobalQuota = &policy.Quota{Requests: n, Per: per}
		}
	}
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// pairs parses repeated NAME=VALUE flags. Errors give the flag's position,
// never its value (which may be a secret).
func pairs(errs *[]error, flag string, in []string) map[string]string {
	out := map[string]string{}
	for i, p := range in {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			*errs = append(*errs, fmt.Errorf("%s (occurrence %d): want NAME=VALUE", flag, i+1))
			continue
		}
		out[k] = v
	}
	return out
}

func checkTime(errs *[]error, flag, s string) *time.Time {
	if s == "" {
		return &time.Time{} // clears the field
	}
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case err != nil:
		*errs = append(*errs, fmt.Errorf("%s %q: want an RFC 3339 time like 2027-01-02T15:04:05Z", flag, s))
		return nil
	case t.IsZero(): // would read as "none" (--no-expiry), not as that instant
		*errs = append(*errs, fmt.Errorf("%s %q: the zero time reads as unset; give a real time, or \"\" to clear", flag, s))
		return nil
	}
	return &t
}
