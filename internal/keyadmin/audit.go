package keyadmin

import (
	"context"
	"time"

	"github.com/keygate/keygate/policy"
)

// Finding codes Audit adds to policy.Audit's.
const (
	// FindingUnreadable: the record cannot be read (Detail says why).
	FindingUnreadable = "unreadable"
	// FindingUsageUnreadable: when the key was last used cannot be read,
	// so "unused" is not judged; the key's other findings still are.
	FindingUsageUnreadable = "usage_unreadable"
)

// AuditOptions are Audit's thresholds.
type AuditOptions struct {
	policy.AuditOptions // zero values take policy's defaults
	// UnusedFor > 0 reports active keys not used for longer as "unused"
	// (stores with Caps.Usage only; without it there are no such
	// findings). 0: off.
	UnusedFor time.Duration
}

// Audited is one key with findings.
type Audited struct {
	ID       string
	Tenant   string // "" when the record cannot be read
	Findings []policy.Finding
}

// Audit reads every key and reports those with risks (policy.Audit, plus
// unused, unreadable and usage_unreadable), in the store's order. Revoked
// keys have none.
func (s *Service) Audit(ctx context.Context, opts AuditOptions) ([]Audited, error) {
	keys, err := s.readAll(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	report := []Audited{}
	for _, k := range keys {
		if k.Err != nil {
			report = append(report, Audited{ID: k.ID, Findings: []policy.Finding{{Code: FindingUnreadable, Detail: k.Err.Error()}}})
			continue
		}
		f := policy.Audit(k.Record, now, opts.AuditOptions)
		switch {
		case k.UsageErr != nil:
			f = append(f, policy.Finding{Code: FindingUsageUnreadable, Detail: k.UsageErr.Error()})
		case s.usage != nil:
			if u := policy.AuditUnused(k.Record, k.LastUsed, now, opts.UnusedFor); u != nil {
				f = append(f, *u)
			}
		}
		if len(f) > 0 {
			report = append(report, Audited{ID: k.ID, Tenant: k.Record.Tenant, Findings: f})
		}
	}
	return report, nil
}
