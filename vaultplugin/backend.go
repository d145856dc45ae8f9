package vaultplugin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// Name is the plugin name the docs and tests register the engine under.
const Name = "keygate"

// Version is reported to Vault as the plugin's running version (set at
// build time with -ldflags "-X github.com/keygate/keygate/vaultplugin.Version=v…").
// Register the binary with the same -version.
var Version = "v0.1.0"

// SecretType is the type of the secret (lease) an issued key carries.
const SecretType = "keygate_key"

// Backend is the keygate secrets engine.
type Backend struct {
	*framework.Backend

	now       func() time.Time       // clock; time.Now outside tests
	format    policy.Format          // key format of issued keys
	locks     []*locksutil.LockEntry // per key id: check-and-set
	journalMu sync.Mutex             // one journal append at a time
}

// Factory is the logical.Factory Vault calls to mount the engine.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b, err := New(time.Now)
	if err != nil {
		return nil, err
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// New returns an engine (not yet Setup) with the clock now.
func New(now func() time.Time) (*Backend, error) {
	format, err := policy.NewFormat(policy.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	b := &Backend{now: now, format: format, locks: locksutil.CreateLocks()}
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(backendHelp),
		BackendType:    logical.TypeLogical,
		RunningVersion: Version,
		Paths: framework.PathAppend(
			b.rolePaths(),
			b.issuePaths(),
			b.keyPaths(),
			[]*framework.Path{b.importPath(), b.journalPath()},
		),
		Secrets: []*framework.Secret{b.keySecret()},
	}
	return b, nil
}

// HandleRequest redacts everything key-shaped from error texts: the
// framework's own field errors quote the value given ("error converting
// input kg_… for field ttl"), and a key pasted into the wrong field must
// never be echoed back, logged by Vault or written to its audit log.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	resp, err := b.Backend.HandleRequest(ctx, req)
	if err != nil {
		if msg := err.Error(); policy.Redact(msg) != msg {
			err = errors.New(policy.Redact(msg))
		}
	}
	if resp != nil && resp.IsError() {
		if msg, ok := resp.Data["error"].(string); ok {
			resp.Data["error"] = policy.Redact(msg)
		}
	}
	return resp, err
}

// HandleExistenceCheck redacts like HandleRequest: on create/update paths
// the framework checks the fields here first, and its errors quote them.
func (b *Backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (checkFound, exists bool, err error) {
	checkFound, exists, err = b.Backend.HandleExistenceCheck(ctx, req)
	if err != nil {
		if msg := err.Error(); policy.Redact(msg) != msg {
			var user errutil.UserError
			if errors.As(err, &user) {
				return checkFound, exists, errutil.UserError{Err: policy.Redact(msg)}
			}
			return checkFound, exists, errors.New(policy.Redact(msg))
		}
	}
	return checkFound, exists, err
}

// clock is the engine's time in UTC.
func (b *Backend) clock() time.Time { return b.now().UTC() }

// service is keyadmin's lifecycle over this request's storage.
func (b *Backend) service(st *store) (*keyadmin.Service, error) {
	return keyadmin.New(keyadmin.Config{Format: b.format, Now: b.now}, st)
}

// store is the engine's storage for one request.
func (b *Backend) store(req *logical.Request) *store {
	return &store{s: req.Storage, b: b}
}

const backendHelp = `
The keygate secrets engine issues and manages keygate API keys.

Roles (roles/<name>) bound what a team may issue: tenant, scopes,
restrictions, rate limit and quota ceilings, TTLs. issue/<role> returns a
new key once, with a Vault lease: when the lease expires or is revoked
the key is revoked. keys/<id> is the admin path keygate's CLI uses
(check-and-set writes, like KV v2), journal is the change feed keygate
servers poll, and import migrates keys issued elsewhere.
`
