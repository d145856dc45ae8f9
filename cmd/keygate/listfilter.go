package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/policy"
)

// listFilter selects keys for `keygate keys list`. Every filter given must
// match; records that cannot be read are always listed (with their error).
type listFilter struct {
	tenant         string
	status         string // active, revoked or expired
	expiringWithin string
	noExpiry       bool
	unusedFor      string

	within, unused time.Duration
}

func (f *listFilter) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.tenant, "tenant", "", "only keys of this tenant")
	fs.StringVar(&f.status, "status", "", "only keys with this status: active, revoked or expired")
	fs.StringVar(&f.expiringWithin, "expiring-within", "", "only active keys expiring within this time, e.g. 7d")
	fs.BoolVar(&f.noExpiry, "no-expiry", false, "only keys without an expiry")
	fs.StringVar(&f.unusedFor, "unused-for", "", "only keys not used for this long, e.g. 90d (never-used keys count from created_at; Vault store only)")
}

// check validates the filter flags, reporting every problem at once.
func (f *listFilter) check() error {
	var errs []error
	switch f.status {
	case "", policy.StatusActive, policy.StatusRevoked, "expired":
	default:
		errs = append(errs, fmt.Errorf("--status %q: want active, revoked or expired", f.status))
	}
	if f.expiringWithin != "" {
		d, err := parseLifetime(f.expiringWithin)
		if err != nil {
			errs = append(errs, fmt.Errorf("--expiring-within: %w", err))
		}
		f.within = d
	}
	if f.unusedFor != "" {
		d, err := parseLifetime(f.unusedFor)
		if err != nil {
			errs = append(errs, fmt.Errorf("--unused-for: %w", err))
		}
		f.unused = d
	}
	if f.noExpiry && f.expiringWithin != "" {
		errs = append(errs, errors.New("--no-expiry and --expiring-within: give one at most"))
	}
	return errors.Join(errs...)
}

// keep reports whether a row passes the filter at time now.
func (f *listFilter) keep(r listed, now time.Time) bool {
	rec := r.Record
	if rec == nil {
		return true
	}
	exp := rec.ExpiresAtTime()
	expired := !exp.IsZero() && !now.Before(exp)
	status := rec.Status
	if status == policy.StatusActive && expired {
		status = "expired"
	}
	switch {
	case f.tenant != "" && rec.Tenant != f.tenant,
		f.status != "" && status != f.status,
		f.noExpiry && !exp.IsZero(),
		f.within > 0 && (status != policy.StatusActive || exp.IsZero() || exp.After(now.Add(f.within))):
		return false
	}
	if f.unused > 0 && r.UsageError == "" { // unknown use: listed, with its error
		since, known := policy.UnusedSince(rec, r.lastUsed)
		return !known || now.Sub(since) > f.unused
	}
	return true
}
