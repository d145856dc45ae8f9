package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/internal/keyadmin"
)

// listFlags select keys for `keygate keys list` (keyadmin.Filter).
type listFlags struct {
	tenant         string
	status         string // active, revoked or expired
	expiringWithin string
	noExpiry       bool
	unusedFor      string
}

func (f *listFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.tenant, "tenant", "", "only keys of this tenant")
	fs.StringVar(&f.status, "status", "", "only keys with this status: active, revoked or expired")
	fs.StringVar(&f.expiringWithin, "expiring-within", "", "only active keys expiring within this time, e.g. 7d")
	fs.BoolVar(&f.noExpiry, "no-expiry", false, "only keys without an expiry")
	fs.StringVar(&f.unusedFor, "unused-for", "", "only keys not used for this long, e.g. 90d (never-used keys count from created_at; Vault store only)")
}

// filter reads the filter flags, reporting every problem at once.
func (f *listFlags) filter() (keyadmin.Filter, error) {
	var errs []error
	filter := keyadmin.Filter{Tenant: f.tenant, NoExpiry: f.noExpiry}
	if f.status != "" {
		st, err := keyadmin.ParseStatus(f.status)
		if err != nil {
			errs = append(errs, fmt.Errorf("--status %q: want active, revoked or expired", f.status))
		}
		filter.Status = st
	}
	for _, d := range []struct {
		flag, value string
		into        *time.Duration
	}{{"--expiring-within", f.expiringWithin, &filter.ExpiringWithin}, {"--unused-for", f.unusedFor, &filter.UnusedFor}} {
		if d.value == "" {
			continue
		}
		var err error
		if *d.into, err = keyadmin.ParseLifetime(d.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.flag, err))
		}
	}
	if f.noExpiry && f.expiringWithin != "" {
		errs = append(errs, errors.New("--no-expiry and --expiring-within: give one at most"))
	}
	return filter, errors.Join(errs...)
}
