package vaultplugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// leaseRevokedReason is the revoked_reason of a key whose lease ended.
const leaseRevokedReason = "lease revoked"

func (b *Backend) keySecret() *framework.Secret {
	return &framework.Secret{
		Type: SecretType,
		Fields: map[string]*framework.FieldSchema{
			"id":         {Type: framework.TypeString, Description: "Key id (public: it names keys/<id>)."},
			"key":        {Type: framework.TypeString, Description: "The key. Shown once: only its hash is stored."},
			"tenant":     {Type: framework.TypeString, Description: "Tenant of the key."},
			"scopes":     {Type: framework.TypeCommaStringSlice, Description: "Scopes of the key."},
			"expires_at": {Type: framework.TypeString, Description: "Expiry of the key (RFC 3339): the end of its lease."},
		},
		Renew:  b.renewKey,
		Revoke: b.revokeKey,
	}
}

func leaseKeyID(req *logical.Request) (string, error) {
	id, _ := req.Secret.InternalData["id"].(string)
	if !policy.ValidID(id) {
		return "", errors.New("lease has no key id")
	}
	return id, nil
}

// revokeKey is called when a key's lease is revoked or expires: the key
// is revoked (journaled), unless it already is or was deleted.
func (b *Backend) revokeKey(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keyID, err := leaseKeyID(req)
	if err != nil {
		return nil, err
	}
	st := b.store(req)
	rec, _, err := st.Get(ctx, keyID)
	switch {
	case errors.Is(err, policy.ErrKeyNotFound):
		return nil, nil // deleted: nothing left to revoke
	case err != nil && !errors.Is(err, policy.ErrInvalidRecord):
		return nil, err // Vault retries the revocation
	case rec != nil && rec.Status == policy.StatusRevoked:
		return nil, nil
	}
	svc, err := b.service(st)
	if err != nil {
		return nil, err
	}
	changed, err := svc.Revoke(ctx, keyID, leaseRevokedReason)
	if err != nil {
		return nil, fmt.Errorf("revoke key %s: %w", keyID, err)
	}
	return warnings(nil, changed.Warnings), nil
}

// renewKey extends a key's lease by the increment (default: the TTL it
// was issued with), never past issue time + max_ttl, and sets the key's
// expires_at to the new end of the lease (journaled as an update).
// Revoked, deleted and rotated keys are not renewed.
func (b *Backend) renewKey(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keyID, err := leaseKeyID(req)
	if err != nil {
		return nil, err
	}
	st := b.store(req)
	e, err := st.entry(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if e == nil || e.Lease == nil {
		return logical.ErrorResponse("key %s: deleted, or has no lease: not renewed", keyID), nil
	}
	rec, _, err := st.Get(ctx, keyID)
	switch {
	case err != nil:
		return errResponse("not renewed", err)
	case rec.Status != policy.StatusActive:
		return logical.ErrorResponse("key %s is %s: not renewed", keyID, rec.Status), nil
	case rec.RotatedTo != "":
		return logical.ErrorResponse("key %s was rotated to %s: not renewed (its grace period stays)", keyID, rec.RotatedTo), nil
	}
	now := b.clock()
	issued := e.Lease.IssuedAt
	if !req.Secret.IssueTime.IsZero() {
		issued = req.Secret.IssueTime // Vault's own start of the lease
	}
	increment := req.Secret.Increment
	if increment <= 0 {
		increment = e.Lease.TTL
	}
	end := now.Add(increment)
	if maxEnd := issued.Add(e.Lease.MaxTTL); end.After(maxEnd) {
		end = maxEnd
	}
	if !end.After(now) {
		return logical.ErrorResponse("key %s: its lease reached max_ttl %s: not renewed", keyID, e.Lease.MaxTTL), nil
	}
	end = end.Truncate(time.Second)
	svc, err := b.service(st)
	if err != nil {
		return nil, err
	}
	changed, err := svc.Modify(ctx, keyID, keyadmin.Fields{ExpiresAt: &end})
	if err != nil {
		return errResponse("not renewed", err)
	}
	// No Data: Vault keeps a lease's response data with the lease, and
	// renewing replaces it, so the issue response (the raw key) is
	// dropped from the lease entry at the first renewal.
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = end.Sub(now)
	resp.Secret.MaxTTL = e.Lease.MaxTTL
	return warnings(resp, changed.Warnings), nil
}

// warnings adds keyadmin's warnings (a journal append that failed after
// the change was written) to resp.
func warnings(resp *logical.Response, ws []error) *logical.Response {
	if len(ws) == 0 {
		return resp
	}
	if resp == nil {
		resp = &logical.Response{}
	}
	for _, w := range ws {
		resp.AddWarning(w.Error())
	}
	return resp
}

// errResponse turns a keyadmin error into Vault's answer: 400 for input
// and rules (naming the field), 404 for a missing key, else an error (500).
func errResponse(what string, err error) (*logical.Response, error) {
	switch {
	case errors.Is(err, keyadmin.ErrNotFound):
		return nil, logical.CodedError(404, what+": "+err.Error())
	case errors.Is(err, keyadmin.ErrInvalidInput), errors.Is(err, keyadmin.ErrInvalidID),
		errors.Is(err, keyadmin.ErrNotRotatable), errors.Is(err, keyadmin.ErrIDTaken),
		errors.Is(err, keyadmin.ErrInvalidRecord), errors.Is(err, keyadmin.ErrNoRateLimit):
		return logical.ErrorResponse("%s: %s", what, err), nil
	case errors.Is(err, keyadmin.ErrConflict), errors.Is(err, keyadmin.ErrExists):
		return logical.ErrorResponse("%s: check-and-set: %s", what, err), nil
	}
	return nil, fmt.Errorf("%s: %w", what, err)
}
