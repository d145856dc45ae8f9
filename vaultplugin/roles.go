package vaultplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/policy"
)

const rolesPrefix = "roles/"

// role bounds the keys issued for it: issue/<role> and admin writes to
// those keys stay within it.
type role struct {
	Tenant           string            `json:"tenant"`
	AllowedScopes    []string          `json:"allowed_scopes,omitempty"`
	AllowedHosts     []string          `json:"allowed_hosts,omitempty"`
	AllowedCIDRs     []string          `json:"allowed_cidrs,omitempty"`
	AllowedReferrers []string          `json:"allowed_referrers,omitempty"`
	MaxRateLimit     string            `json:"max_rate_limit,omitempty"` // policy.ParseRate form
	MaxQuota         string            `json:"max_quota,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	DefaultTTL       time.Duration     `json:"default_ttl"`
	MaxTTL           time.Duration     `json:"max_ttl"` // 0: the mount's
}

func (r *role) data() map[string]any {
	return map[string]any{
		"tenant":            r.Tenant,
		"allowed_scopes":    nonNil(r.AllowedScopes),
		"allowed_hosts":     nonNil(r.AllowedHosts),
		"allowed_cidrs":     nonNil(r.AllowedCIDRs),
		"allowed_referrers": nonNil(r.AllowedReferrers),
		"max_rate_limit":    r.MaxRateLimit,
		"max_quota":         r.MaxQuota,
		"headers":           nonNilMap(r.Headers),
		"metadata":          nonNilMap(r.Metadata),
		"default_ttl":       int64(r.DefaultTTL / time.Second),
		"max_ttl":           int64(r.MaxTTL / time.Second),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

var roleFields = map[string]*framework.FieldSchema{
	"name":              {Type: framework.TypeNameString, Description: "Name of the role.", Required: true},
	"tenant":            {Type: framework.TypeString, Description: "Tenant of every key issued for the role (sent upstream as x-keygate-tenant). Required."},
	"allowed_scopes":    {Type: framework.TypeCommaStringSlice, Description: "Scopes a key of the role may have. An issued key's scopes are a subset; by default all of them."},
	"allowed_hosts":     {Type: framework.TypeCommaStringSlice, Description: "Hosts every key of the role is restricted to (a key may ask for a subset). Empty: keys may set any."},
	"allowed_cidrs":     {Type: framework.TypeCommaStringSlice, Description: "Peer CIDRs every key of the role is restricted to (a key may ask for a subset). Empty: keys may set any."},
	"allowed_referrers": {Type: framework.TypeCommaStringSlice, Description: "Origins every key of the role is restricted to (a key may ask for a subset). Empty: keys may set any."},
	"max_rate_limit":    {Type: framework.TypeString, Description: `Rate limit ceiling, e.g. "100/second": a key's rate_limit may not exceed it (nor its burst the ceiling's requests); a key without one gets the ceiling.`},
	"max_quota":         {Type: framework.TypeString, Description: `Quota ceiling, e.g. "10000/day" (minute, hour or day): a key's quota may not exceed it in any window; a key without one gets the ceiling.`},
	"headers":           {Type: framework.TypeKVPairs, Description: "Headers written into every key of the role (added upstream on allow)."},
	"metadata":          {Type: framework.TypeKVPairs, Description: "Metadata written into every key of the role (never sent upstream)."},
	"default_ttl":       {Type: framework.TypeDurationSecond, Description: "Lease TTL of an issued key when issue gives none. 0: the mount's default."},
	"max_ttl":           {Type: framework.TypeDurationSecond, Description: "Longest lease (and key lifetime) of an issued key, renewals included. 0: the mount's maximum."},
}

func (b *Backend) rolePaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern:        rolesPrefix + framework.GenericNameRegex("name"),
			Fields:         roleFields,
			ExistenceCheck: b.roleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.readRole, Summary: "Read a role."},
				logical.CreateOperation: &framework.PathOperation{Callback: b.writeRole, Summary: "Create a role."},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.writeRole, Summary: "Change a role; fields not given keep their values."},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.deleteRole, Summary: "Delete a role (its keys stay; admin writes to them are refused until it exists again)."},
			},
			HelpSynopsis: "Roles bound what issue/<role> may hand out.",
			HelpDescription: `A role names the tenant of its keys and bounds everything else: the
scopes a key may have, the hosts, CIDRs and referrers every key is
restricted to, rate limit and quota ceilings, and the TTLs of the keys'
leases. Give a team a Vault policy with "update" on issue/<role> and it
can issue keys for that role and nothing else.`,
		},
		{
			Pattern: rolesPrefix + "?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.listRoles, Summary: "List the roles."},
			},
			HelpSynopsis:    "List the roles.",
			HelpDescription: "The names of every role, sorted.",
		},
	}
}

func getRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	raw, err := s.Get(ctx, rolesPrefix+name)
	if err != nil || raw == nil {
		return nil, err
	}
	var r role
	if err := json.Unmarshal(raw.Value, &r); err != nil {
		return nil, fmt.Errorf("role %q: %w", name, err)
	}
	return &r, nil
}

func (b *Backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := getRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *Backend) readRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := getRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: r.data()}, nil
}

func (b *Backend) listRoles(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolesPrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *Backend) deleteRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, rolesPrefix+d.Get("name").(string))
}

func (b *Backend) writeRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{}
	}
	applyRoleFields(r, d)
	if err := r.validate(); err != nil {
		return logical.ErrorResponse("role %q: %s", name, err), nil
	}
	return nil, putJSON(ctx, req.Storage, rolesPrefix+name, r)
}

// applyRoleFields sets the fields the request gives.
func applyRoleFields(r *role, d *framework.FieldData) {
	strs := map[string]*string{"tenant": &r.Tenant, "max_rate_limit": &r.MaxRateLimit, "max_quota": &r.MaxQuota}
	for f, p := range strs {
		if v, ok := d.GetOk(f); ok {
			*p = strings.TrimSpace(v.(string))
		}
	}
	lists := map[string]*[]string{"allowed_scopes": &r.AllowedScopes, "allowed_hosts": &r.AllowedHosts,
		"allowed_cidrs": &r.AllowedCIDRs, "allowed_referrers": &r.AllowedReferrers}
	for f, p := range lists {
		if v, ok := d.GetOk(f); ok {
			*p = v.([]string)
		}
	}
	maps := map[string]*map[string]string{"headers": &r.Headers, "metadata": &r.Metadata}
	for f, p := range maps {
		if v, ok := d.GetOk(f); ok {
			*p = v.(map[string]string)
		}
	}
	durs := map[string]*time.Duration{"default_ttl": &r.DefaultTTL, "max_ttl": &r.MaxTTL}
	for f, p := range durs {
		if v, ok := d.GetOk(f); ok {
			*p = time.Duration(v.(int)) * time.Second
		}
	}
}

// validate reports every problem at once, each naming its field: the
// role's values must make a valid record (the one an issue with no
// options gives), and the ceilings must parse.
func (r *role) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %q: %s", field, fmt.Sprintf(format, args...)))
	}
	if r.Tenant == "" {
		bad("tenant", "required")
	}
	rl, q, err := r.ceilings()
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case r.DefaultTTL < 0:
		bad("default_ttl", "must be >= 0")
	case r.MaxTTL < 0:
		bad("max_ttl", "must be >= 0")
	case r.MaxTTL > 0 && r.DefaultTTL > r.MaxTTL:
		bad("default_ttl", "%s is longer than max_ttl %s", r.DefaultTTL, r.MaxTTL)
	}
	probe := policy.Record{
		Hash: policy.AlgSHA256 + ":" + strings.Repeat("0", 64), Status: policy.StatusActive,
		Tenant: r.Tenant, Scopes: r.AllowedScopes, AllowedHosts: r.AllowedHosts, AllowedCIDRs: r.AllowedCIDRs,
		AllowedReferrers: r.AllowedReferrers, Headers: r.Headers, Metadata: r.Metadata, RateLimit: rl, Quota: q,
	}
	if r.Tenant != "" {
		if err := probe.Validate(); err != nil {
			errs = append(errs, errors.New(roleFieldNames.Replace(err.Error())))
		}
	}
	if keyShapedRole(r) {
		bad("role", errKeyShaped)
	}
	return errors.Join(errs...)
}

// roleFieldNames renames a probe record's fields to the role's.
var roleFieldNames = strings.NewReplacer(
	`record field "scopes`, `field "allowed_scopes`,
	`record field "rate_limit`, `field "max_rate_limit`,
	`record field "quota`, `field "max_quota`,
	`record field "`, `field "`,
)

// ceilings parses the role's max_rate_limit and max_quota.
func (r *role) ceilings() (*policy.RateLimit, *policy.Quota, error) {
	rl, q, errs := parseLimits("max_rate_limit", r.MaxRateLimit, "max_quota", r.MaxQuota)
	return rl, q, errs
}

// parseLimits parses a rate limit and a quota in policy.ParseRate form
// ("" for none), naming the fields in errors.
func parseLimits(rateField, rate, quotaField, quota string) (*policy.RateLimit, *policy.Quota, error) {
	var rl *policy.RateLimit
	var q *policy.Quota
	var errs []error
	if rate != "" {
		n, per, err := policy.ParseRate(rate)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %q: %w", rateField, err))
		} else {
			rl = &policy.RateLimit{Requests: n, Per: per}
		}
	}
	if quota != "" {
		n, per, err := policy.ParseRate(quota)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("field %q: %w", quotaField, err))
		case per == "second":
			errs = append(errs, fmt.Errorf("field %q: %q: a quota is per minute, hour or day", quotaField, quota))
		default:
			q = &policy.Quota{Requests: n, Per: per}
		}
	}
	return rl, q, errors.Join(errs...)
}

// errKeyShaped is keyadmin's text for a key pasted into a field.
const errKeyShaped = "holds something shaped like an API key: keys are never stored in clear (name a key by its id)"

func keyShapedRole(r *role) bool {
	vals := []string{r.Tenant, r.MaxRateLimit, r.MaxQuota}
	for _, l := range [][]string{r.AllowedScopes, r.AllowedHosts, r.AllowedCIDRs, r.AllowedReferrers} {
		vals = append(vals, l...)
	}
	for _, m := range []map[string]string{r.Headers, r.Metadata} {
		for k, v := range m {
			vals = append(vals, k, v)
		}
	}
	for _, v := range vals {
		if policy.Redact(v) != v {
			return true
		}
	}
	return false
}
