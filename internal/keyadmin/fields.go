package keyadmin

import (
	"errors"
	"maps"
	"time"

	"github.com/keygate/keygate/policy"
)

// Fields are the record fields Issue sets and Modify changes. A nil
// pointer (or empty value) leaves a field as it is; for Issue, as it is on
// a new record: empty, status active. Hash, status, created_at, updated_at,
// rotated_to and imported are keygate's to set.
type Fields struct {
	Name, Tenant, Owner *string
	// Scopes, AllowedCIDRs, AllowedReferrers, AllowedHosts replace the
	// record's lists (an empty list clears one).
	Scopes, AllowedCIDRs, AllowedReferrers, AllowedHosts *[]string
	// SetHeaders are added (or replace the header of that name), then
	// RemoveHeaders are removed; likewise metadata.
	SetHeaders     map[string]string
	RemoveHeaders  []string
	SetMetadata    map[string]string
	RemoveMetadata []string
	// NotBefore sets the start of validity; a zero time clears it.
	NotBefore *time.Time
	// ExpiresAt sets the expiry (a zero time: none); ExpiresIn sets it to
	// now + ExpiresIn. Give one at most.
	ExpiresAt *time.Time
	ExpiresIn time.Duration
	// RateLimit replaces the rate limit, RemoveRateLimit removes it, and
	// RateBurst changes only the burst of the key's rate limit (with no
	// RateLimit given, the key must have one: else ErrNoRateLimit).
	RateLimit       *policy.RateLimit
	RemoveRateLimit bool
	RateBurst       *int
	// Quota replaces the quota; RemoveQuota removes it.
	Quota       *policy.Quota
	RemoveQuota bool
	// GlobalRateLimit and GlobalQuota replace the limits counted across
	// replicas (a global rate limit has no burst); RemoveGlobalRateLimit
	// and RemoveGlobalQuota remove them.
	GlobalRateLimit       *policy.RateLimit
	RemoveGlobalRateLimit bool
	GlobalQuota           *policy.Quota
	RemoveGlobalQuota     bool
}

// check reports contradictions within the fields themselves.
func (f *Fields) check() error {
	var errs []error
	if f.ExpiresAt != nil && f.ExpiresIn != 0 {
		errs = append(errs, fieldErr(FieldExpiry, "give an expiry time or a lifetime, not both"))
	}
	if f.ExpiresIn < 0 {
		errs = append(errs, fieldErr(FieldExpiry, "lifetime %s: must be positive", f.ExpiresIn))
	}
	if f.RemoveRateLimit && (f.RateLimit != nil || f.RateBurst != nil) {
		errs = append(errs, fieldErr(FieldRateBurst, "remove the rate limit, or set it: not both"))
	}
	if f.RemoveQuota && f.Quota != nil {
		errs = append(errs, fieldErr(FieldQuota, "remove the quota, or set it: not both"))
	}
	if f.RemoveGlobalRateLimit && f.GlobalRateLimit != nil {
		errs = append(errs, fieldErr(FieldGlobalRateLimit, "remove the global rate limit, or set it: not both"))
	}
	if f.RemoveGlobalQuota && f.GlobalQuota != nil {
		errs = append(errs, fieldErr(FieldGlobalQuota, "remove the global quota, or set it: not both"))
	}
	return errors.Join(append(errs, f.keyShaped()...)...)
}

// errKeyShaped: a pasted key must not end up stored in clear in a record.
const errKeyShaped = "holds something shaped like an API key: keys are never stored in clear (name a key by its id)"

// keyShaped reports each text field holding something shaped like an API
// key (policy.Redact would hide it), naming the field, never the value.
func (f *Fields) keyShaped() []error {
	var errs []error
	check := func(field string, values ...string) {
		for _, v := range values {
			if policy.Redact(v) != v {
				errs = append(errs, fieldErr(field, errKeyShaped))
				return
			}
		}
	}
	str := func(p *string) []string {
		if p == nil {
			return nil
		}
		return []string{*p}
	}
	list := func(p *[]string) []string {
		if p == nil {
			return nil
		}
		return *p
	}
	check("name", str(f.Name)...)
	check("tenant", str(f.Tenant)...)
	check("owner", str(f.Owner)...)
	check("scopes", list(f.Scopes)...)
	check("allowed_cidrs", list(f.AllowedCIDRs)...)
	check("allowed_referrers", list(f.AllowedReferrers)...)
	check("allowed_hosts", list(f.AllowedHosts)...)
	for k, v := range f.SetHeaders {
		check("headers", k, v)
	}
	for k, v := range f.SetMetadata {
		check("metadata", k, v)
	}
	return errs
}

// apply writes the fields into rec at time now. It applies every field it
// can, so that the record's own problems can be reported with its error.
func (f *Fields) apply(rec *policy.Record, now time.Time) error {
	if err := f.check(); err != nil {
		return err
	}
	setString(&rec.Name, f.Name)
	setString(&rec.Tenant, f.Tenant)
	setString(&rec.Owner, f.Owner)
	setList(&rec.Scopes, f.Scopes)
	setList(&rec.AllowedCIDRs, f.AllowedCIDRs)
	setList(&rec.AllowedReferrers, f.AllowedReferrers)
	setList(&rec.AllowedHosts, f.AllowedHosts)
	rec.Headers = merge(rec.Headers, f.SetHeaders, f.RemoveHeaders)
	rec.Metadata = merge(rec.Metadata, f.SetMetadata, f.RemoveMetadata)
	if f.NotBefore != nil {
		rec.NotBefore = formatTime(*f.NotBefore)
	}
	switch {
	case f.ExpiresIn > 0:
		rec.ExpiresAt = formatTime(now.Add(f.ExpiresIn))
	case f.ExpiresAt != nil:
		rec.ExpiresAt = formatTime(*f.ExpiresAt)
	}
	return f.applyLimits(rec)
}

func (f *Fields) applyLimits(rec *policy.Record) error {
	var err error
	switch {
	case f.RemoveRateLimit:
		rec.RateLimit = nil
	case f.RateLimit != nil:
		rl := *f.RateLimit
		if f.RateBurst != nil {
			rl.Burst = *f.RateBurst
		}
		rec.RateLimit = &rl
	case f.RateBurst != nil && rec.RateLimit == nil:
		err = &FieldError{Field: FieldRateBurst, Err: ErrNoRateLimit}
	case f.RateBurst != nil:
		rl := *rec.RateLimit
		rl.Burst = *f.RateBurst
		rec.RateLimit = &rl
	}
	switch {
	case f.RemoveQuota:
		rec.Quota = nil
	case f.Quota != nil:
		q := *f.Quota
		rec.Quota = &q
	}
	switch {
	case f.RemoveGlobalRateLimit:
		rec.GlobalRateLimit = nil
	case f.GlobalRateLimit != nil:
		rl := *f.GlobalRateLimit
		rec.GlobalRateLimit = &rl
	}
	switch {
	case f.RemoveGlobalQuota:
		rec.GlobalQuota = nil
	case f.GlobalQuota != nil:
		q := *f.GlobalQuota
		rec.GlobalQuota = &q
	}
	return err
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// setList replaces a list; an empty one is stored as none.
func setList(dst *[]string, v *[]string) {
	if v == nil {
		return
	}
	if len(*v) == 0 {
		*dst = nil
		return
	}
	*dst = append([]string(nil), (*v)...)
}

// merge returns m with set added and remove removed; nil when empty. m is
// not modified (it may be shared with the record read from the store).
func merge(m, set map[string]string, remove []string) map[string]string {
	if len(m) == 0 && len(set) == 0 {
		return nil
	}
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, set)
	for _, k := range remove {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// formatTime is a record time: RFC 3339 in UTC, whole seconds; "" for zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
