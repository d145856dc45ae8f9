package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/policy"
)

// recordFlags set key record fields from the command line (create, update).
type recordFlags struct {
	fs                         *pflag.FlagSet
	name, tenant, owner        string
	scopes, cidrs, refs, hosts []string
	headers, metadata          []string
	expiresIn                  string
	expiresAt, notBefore       string
	removeHeaders, removeMeta  []string
	noExpiry                   bool
	rate, quota                string
	burst                      int
	noRate, noQuota            bool
	forUpdate                  bool
}

func (r *recordFlags) register(fs *pflag.FlagSet, forUpdate bool) {
	r.fs, r.forUpdate = fs, forUpdate
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
	if forUpdate {
		fs.BoolVar(&r.noRate, "no-rate-limit", false, "remove the rate limit")
		fs.BoolVar(&r.noQuota, "no-quota", false, "remove the quota")
		fs.StringArrayVar(&r.removeHeaders, "remove-header", nil, "header name to stop adding (repeatable)")
		fs.StringArrayVar(&r.removeMeta, "remove-metadata", nil, "metadata key to remove (repeatable)")
		fs.BoolVar(&r.noExpiry, "no-expiry", false, "remove the expiry")
	}
}

// apply writes the flags that were given into rec, reporting every bad flag
// at once. For create every flag applies; for update only changed ones.
func (r *recordFlags) apply(rec *policy.Record, now time.Time) error {
	var errs []error
	set := func(name string) bool { return r.fs.Changed(name) }
	if set("name") {
		rec.Name = r.name
	}
	if set("tenant") {
		rec.Tenant = r.tenant
	}
	if set("owner") {
		rec.Owner = r.owner
	}
	if set("scopes") {
		rec.Scopes = nonEmpty(r.scopes)
	}
	if set("cidrs") {
		rec.AllowedCIDRs = nonEmpty(r.cidrs)
	}
	if set("referrers") {
		rec.AllowedReferrers = nonEmpty(r.refs)
	}
	if set("hosts") {
		rec.AllowedHosts = nonEmpty(r.hosts)
	}
	rec.Headers = mergePairs(&errs, "--header", rec.Headers, r.headers, r.removeHeaders)
	rec.Metadata = mergePairs(&errs, "--metadata", rec.Metadata, r.metadata, r.removeMeta)
	if set("not-before") {
		rec.NotBefore = checkTime(&errs, "--not-before", r.notBefore)
	}
	switch {
	case set("expires-in") && set("expires-at"), r.noExpiry && (set("expires-in") || set("expires-at")):
		errs = append(errs, errors.New("--expires-in, --expires-at and --no-expiry: give one at most"))
	case set("expires-in"):
		d, err := parseLifetime(r.expiresIn)
		if err != nil {
			errs = append(errs, fmt.Errorf("--expires-in: %w", err))
		}
		rec.ExpiresAt = now.Add(d).Format(time.RFC3339)
	case set("expires-at"):
		rec.ExpiresAt = checkTime(&errs, "--expires-at", r.expiresAt)
	case r.noExpiry:
		rec.ExpiresAt = ""
	}
	r.applyLimits(&errs, rec)
	return errors.Join(errs...)
}

// applyLimits sets or removes the rate limit and quota.
func (r *recordFlags) applyLimits(errs *[]error, rec *policy.Record) {
	set := r.fs.Changed
	switch {
	case r.noRate && (set("rate-limit") || set("rate-burst")):
		*errs = append(*errs, errors.New("--no-rate-limit with --rate-limit or --rate-burst: give one"))
	case r.noRate:
		rec.RateLimit = nil
	case set("rate-limit"):
		if n, per, err := policy.ParseRate(r.rate); err != nil {
			*errs = append(*errs, fmt.Errorf("--rate-limit: %w", err))
		} else {
			rec.RateLimit = &policy.RateLimit{Requests: n, Per: per, Burst: r.burst}
		}
	case set("rate-burst") && rec.RateLimit == nil:
		*errs = append(*errs, errors.New("--rate-burst: the key has no rate limit; give --rate-limit too"))
	case set("rate-burst"):
		changed := *rec.RateLimit
		changed.Burst = r.burst
		rec.RateLimit = &changed
	}
	switch {
	case r.noQuota && set("quota"):
		*errs = append(*errs, errors.New("--no-quota with --quota: give one"))
	case r.noQuota:
		rec.Quota = nil
	case set("quota"):
		if n, per, err := policy.ParseRate(r.quota); err != nil {
			*errs = append(*errs, fmt.Errorf("--quota: %w", err))
		} else {
			rec.Quota = &policy.Quota{Requests: n, Per: per}
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

func mergePairs(errs *[]error, flag string, m map[string]string, in, remove []string) map[string]string {
	for k, v := range pairs(errs, flag, in) {
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	for _, k := range remove {
		delete(m, k)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func checkTime(errs *[]error, flag, s string) string {
	if s == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s %q: want an RFC 3339 time like 2027-01-02T15:04:05Z", flag, s))
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

// parseLifetime accepts Go durations plus a "d" (day) unit: 90d, 36h, 1d12h.
func parseLifetime(s string) (time.Duration, error) {
	orig := s
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want e.g. 90d, 12h or 1d12h", orig)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want e.g. 90d, 12h or 1d12h", orig)
		}
	}
	if d := days + rest; d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q: must be positive", orig)
}
