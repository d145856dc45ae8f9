package vaultplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

func (b *Backend) issuePaths() []*framework.Path {
	return []*framework.Path{{
		Pattern: "issue/" + framework.GenericNameRegex("role"),
		Fields: map[string]*framework.FieldSchema{
			"role":              {Type: framework.TypeNameString, Description: "The role to issue for.", Required: true},
			"scopes":            {Type: framework.TypeCommaStringSlice, Description: "Scopes of the key: a subset of the role's allowed_scopes. Default: all of them."},
			"name":              {Type: framework.TypeString, Description: "A label for people (at most 256 characters)."},
			"owner":             {Type: framework.TypeString, Description: "The team or person responsible for the key."},
			"ttl":               {Type: framework.TypeDurationSecond, Description: "Lease TTL, and the key's lifetime: its expires_at is issue time + ttl. Default: the role's default_ttl (else the mount's). Capped by max_ttl."},
			"allowed_hosts":     {Type: framework.TypeCommaStringSlice, Description: "Hosts the key is restricted to: a subset of the role's. Default: the role's."},
			"allowed_cidrs":     {Type: framework.TypeCommaStringSlice, Description: "Peer CIDRs the key is restricted to: a subset of the role's. Default: the role's."},
			"allowed_referrers": {Type: framework.TypeCommaStringSlice, Description: "Origins the key is restricted to: a subset of the role's. Default: the role's."},
			"rate_limit":        {Type: framework.TypeString, Description: `Rate limit, e.g. "10/second": within the role's max_rate_limit. Default: the ceiling (none without one).`},
			"quota":             {Type: framework.TypeString, Description: `Quota, e.g. "1000/day": within the role's max_quota. Default: the ceiling (none without one).`},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.issue, Summary: "Issue a key for the role."},
		},
		HelpSynopsis: "Issue a new key for a role, with a Vault lease.",
		HelpDescription: `Returns {id, key, tenant, scopes, expires_at} and a lease. The key is
shown only here: the engine stores its SHA-256. The key expires with its
lease (expires_at), is revoked when the lease is revoked (vault lease
revoke, or -prefix <mount>/issue/<role> for every key of the role), and
renewing the lease extends expires_at up to issue time + max_ttl.`,
	}}
}

// issueFields turns an issue request into keyadmin fields within the role.
func issueFields(r *role, d *framework.FieldData) (keyadmin.Fields, error) {
	var errs []error
	list := func(name string, def []string) *[]string {
		v, ok := d.GetOk(name)
		if !ok {
			return &def
		}
		l := v.([]string)
		return &l
	}
	str := func(name string) *string {
		v, ok := d.GetOk(name)
		if !ok {
			return nil
		}
		s := v.(string)
		return &s
	}
	f := keyadmin.Fields{
		Tenant: &r.Tenant, Name: str("name"), Owner: str("owner"),
		Scopes:           list("scopes", r.AllowedScopes),
		AllowedHosts:     list("allowed_hosts", r.AllowedHosts),
		AllowedCIDRs:     list("allowed_cidrs", r.AllowedCIDRs),
		AllowedReferrers: list("allowed_referrers", r.AllowedReferrers),
		SetHeaders:       r.Headers, SetMetadata: r.Metadata,
	}
	rate, _ := d.Get("rate_limit").(string)
	quota, _ := d.Get("quota").(string)
	rl, q, err := parseLimits("rate_limit", strings.TrimSpace(rate), "quota", strings.TrimSpace(quota))
	if err != nil {
		errs = append(errs, err)
	}
	crl, cq, _ := r.ceilings()
	if rl == nil {
		rl = crl
	}
	if q == nil {
		q = cq
	}
	f.RateLimit, f.Quota = rl, q
	return f, errors.Join(errs...)
}

// leaseTTLs is the TTL and max TTL of a new lease for r.
func (b *Backend) leaseTTLs(r *role, d *framework.FieldData) (ttl, maxTTL time.Duration, warning string, err error) {
	maxTTL = b.System().MaxLeaseTTL()
	if r.MaxTTL > 0 && r.MaxTTL < maxTTL {
		maxTTL = r.MaxTTL
	}
	ttl = r.DefaultTTL
	if v, ok := d.GetOk("ttl"); ok {
		if ttl = time.Duration(v.(int)) * time.Second; ttl <= 0 {
			return 0, 0, "", errors.New(`field "ttl": must be positive`)
		}
	}
	if ttl == 0 {
		ttl = b.System().DefaultLeaseTTL()
	}
	if ttl > maxTTL {
		warning = fmt.Sprintf("ttl %s is longer than max_ttl %s: the key's lease and lifetime are %s", ttl, maxTTL, maxTTL)
		ttl = maxTTL
	}
	return ttl, maxTTL, warning, nil
}

func (b *Backend) issue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	roleName := d.Get("role").(string)
	r, err := getRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return logical.ErrorResponse("role %q: no such role", roleName), nil
	}
	f, ferr := issueFields(r, d)
	ttl, maxTTL, warning, terr := b.leaseTTLs(r, d)
	if err := errors.Join(ferr, terr); err != nil {
		return logical.ErrorResponse("nothing issued: %s", err), nil
	}
	now := b.clock()
	f.ExpiresIn = ttl
	st := b.store(req)
	st.create = meta{Role: roleName, Lease: &leaseInfo{IssuedAt: now, TTL: ttl, MaxTTL: maxTTL}}
	svc, err := b.service(st)
	if err != nil {
		return nil, err
	}
	// Check the record the fields make against the role before a key exists.
	if err := svc.CheckIssue(f); err != nil {
		return errResponse("nothing issued", err)
	}
	probe := probeRecord(r, f, now)
	if err := withinRole(probe, r, st.create.Lease); err != nil {
		return logical.ErrorResponse("nothing issued: %s", err), nil
	}
	issued, err := svc.Issue(ctx, f)
	if err != nil {
		return errResponse("nothing issued", err)
	}
	resp := b.Secret(SecretType).Response(map[string]any{
		"id":         issued.ID,
		"key":        issued.RawKey,
		"tenant":     issued.Record.Tenant,
		"scopes":     nonNil(issued.Record.Scopes),
		"expires_at": issued.Record.ExpiresAt,
	}, map[string]any{"id": issued.ID})
	resp.Secret.TTL, resp.Secret.MaxTTL = ttl, maxTTL
	if warning != "" {
		resp.AddWarning(warning)
	}
	return resp, nil
}

// probeRecord is the record Issue will write for f, for the role check
// (the hash is a placeholder).
func probeRecord(r *role, f keyadmin.Fields, now time.Time) *policy.Record {
	rec := &policy.Record{
		Hash: policy.AlgSHA256 + ":" + strings.Repeat("0", 64), Status: policy.StatusActive,
		Tenant: r.Tenant, Scopes: *f.Scopes, AllowedHosts: *f.AllowedHosts, AllowedCIDRs: *f.AllowedCIDRs,
		AllowedReferrers: *f.AllowedReferrers, Headers: f.SetHeaders, Metadata: f.SetMetadata,
		RateLimit: f.RateLimit, Quota: f.Quota, ExpiresAt: now.Add(f.ExpiresIn).UTC().Format(time.RFC3339),
	}
	if len(rec.Scopes) == 0 {
		rec.Scopes = nil
	}
	rec.Validate() // CheckIssue has reported any problem; this sets ExpiresAtTime
	return rec
}
