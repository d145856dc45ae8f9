package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/policy"
)

// Bounds on how much of a KV read response is read. maxBody (hot path,
// peppers) fits a record of policy.MaxRecordSize plus Vault's envelope and
// metadata (custom_metadata alone can be ~40 KiB); a larger 200 response is
// an invalid record. maxAdminBody (Get) is Vault's default max request
// size, so Get can still return the version of an oversized record to fix.
const (
	maxBody      = 2*policy.MaxRecordSize + 16<<10
	maxAdminBody = 32<<20 + 16<<10
)

// ErrInvalidID: the id passed to a Store method is not a key id. The id
// itself is not echoed (it may be a mistyped raw key).
var ErrInvalidID = fmt.Errorf("not a key id (want %d base62 characters)", policy.IDLen)

// Store reads and writes keygate's entries in a Vault KV v2 engine. It is
// safe for concurrent use.
type Store struct {
	client  *vaultapi.Client
	auth    *Auth
	timeout time.Duration
	mount   string
	base    string
	observe Observer // nil: none
}

// New returns a Store for cfg (defaults applied). TLS settings come from
// cfg, else from the usual VAULT_CACERT/VAULT_CLIENT_CERT/... environment
// variables; address, token, namespace, timeout and retries come only from
// cfg: the client makes exactly one attempt per request. With a login
// method or a token file, run s.Auth().Run to keep the token fresh; without
// it the first request logs in.
func New(cfg Config) (*Store, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if !cfg.Auth.usesLogin() && cfg.Auth.TokenFile == "" {
		client.SetToken(cfg.Token)
	}
	auth, err := newAuth(cfg, client)
	if err != nil {
		return nil, err
	}
	return &Store{client: client, auth: auth, timeout: cfg.Timeout, mount: cfg.Mount, base: cfg.BasePath}, nil
}

// Auth returns the Store's token manager; callers run its Run method for
// the Store's lifetime and wait on Ready before reporting healthy.
func (s *Store) Auth() *Auth { return s.auth }

// noteForbidden passes a 403 to the token manager, which checks whether
// the token (the one sent) is dead and logs in again.
func (s *Store) noteForbidden(err error, token string) {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusForbidden {
		s.auth.noteForbidden(token)
	}
}

func (s *Store) keyPath(keyID string) string {
	return s.mount + "/data/" + s.base + "/keys/" + keyID
}

// Lookup is the hot-path read of one key's record. It returns
// policy.ErrKeyNotFound when Vault has no live record (never written,
// deleted, destroyed), an error wrapping policy.ErrInvalidRecord when the
// stored record does not parse or validate, and otherwise an *Error: Vault
// could not answer, and the caller should treat the failure as transient.
func (s *Store) Lookup(ctx context.Context, keyID string) (*policy.Record, error) {
	if !policy.ValidID(keyID) {
		return nil, fmt.Errorf("vault: lookup: %w: %w", policy.ErrKeyNotFound, ErrInvalidID)
	}
	e, err := s.read(ctx, "lookup", keyID, s.keyPath(keyID), nil, maxBody)
	if err != nil {
		return nil, err
	}
	if !e.found {
		return nil, fmt.Errorf("vault: key %s: %w", keyID, policy.ErrKeyNotFound)
	}
	rec, err := policy.ParseRecord(e.data)
	if err != nil {
		return nil, fmt.Errorf("vault: key %s: %w: %w", keyID, policy.ErrInvalidRecord, err)
	}
	return rec, nil
}

// read GETs a KV v2 path (see readRaw), times it, reports it and passes a
// 403 to the token manager.
func (s *Store) read(ctx context.Context, op, keyID, path string, params url.Values, limit int64) (entry, error) {
	if err := s.auth.ensure(ctx, op, keyID); err != nil {
		return entry{}, err
	}
	token := s.client.Token()
	start := time.Now()
	e, err := s.readRaw(ctx, op, keyID, path, params, limit)
	s.observed(op, start, e.found || e.keys != nil || e.version > 0, err)
	s.noteForbidden(err, token)
	return e, err
}

// apiError wraps an error from a vault/api call that went through
// ResponseError (non-raw calls), keeping Vault's messages but not the
// request URL or a raw body.
func (s *Store) apiError(op, keyID string, err error) error {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		return &Error{Op: op, KeyID: keyID, Err: err}
	}
	var decodeErr error
	if re.RawError {
		decodeErr = errors.New("raw")
	}
	return &Error{Op: op, KeyID: keyID, Status: re.StatusCode, Err: s.vaultMessage(re.Errors, decodeErr, len(strings.Join(re.Errors, "")))}
}

// Get reads a key's record and its KV version for a later Update. A record
// that does not parse is returned as an error wrapping
// policy.ErrInvalidRecord together with its version, so it can be fixed.
func (s *Store) Get(ctx context.Context, keyID string) (*policy.Record, int, error) {
	if !policy.ValidID(keyID) {
		return nil, 0, fmt.Errorf("vault: get: %w", ErrInvalidID)
	}
	e, err := s.read(ctx, "get", keyID, s.keyPath(keyID), nil, maxAdminBody)
	if err != nil {
		return nil, 0, err
	}
	if !e.found {
		return nil, 0, fmt.Errorf("vault: key %s: %w", keyID, policy.ErrKeyNotFound)
	}
	rec, err := policy.ParseRecord(e.data)
	if err != nil {
		return nil, e.version, fmt.Errorf("vault: key %s: %w: %w", keyID, policy.ErrInvalidRecord, err)
	}
	return rec, e.version, nil
}

// Create writes a new key's record; it never overwrites: an existing entry
// (even one whose latest version is deleted) is policy.ErrKeyExists.
func (s *Store) Create(ctx context.Context, keyID string, rec *policy.Record) error {
	return s.write(ctx, "create", keyID, rec, 0, policy.ErrKeyExists)
}

// Update replaces a key's record if its KV version is still version (from
// Get); otherwise it returns policy.ErrConflict.
func (s *Store) Update(ctx context.Context, keyID string, rec *policy.Record, version int) error {
	if version < 1 {
		return fmt.Errorf("vault: update %s: version %d: must be >= 1 (from Get)", keyID, version)
	}
	return s.write(ctx, "update", keyID, rec, version, policy.ErrConflict)
}

// write validates rec and writes it with check-and-set cas; a CAS mismatch
// is casErr. The record's fields are the KV data, so the Vault UI shows them.
func (s *Store) write(ctx context.Context, op, keyID string, rec *policy.Record, cas int, casErr error) error {
	if !policy.ValidID(keyID) {
		return fmt.Errorf("vault: %s: %w", op, ErrInvalidID)
	}
	if rec == nil {
		return fmt.Errorf("vault: %s %s: nil record", op, keyID)
	}
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("vault: %s %s: %w: %w", op, keyID, policy.ErrInvalidRecord, err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("vault: %s %s: encoding the record: %w", op, keyID, err)
	}
	if len(data) > policy.MaxRecordSize {
		return fmt.Errorf("vault: %s %s: %w: record is %d bytes, limit %d", op, keyID, policy.ErrInvalidRecord, len(data), policy.MaxRecordSize)
	}
	return s.casWrite(ctx, op, keyID, s.keyPath(keyID), json.RawMessage(data), cas, casErr)
}

// casWrite PUTs data to a KV v2 data path with check-and-set.
func (s *Store) casWrite(ctx context.Context, op, keyID, path string, data any, cas int, casErr error) error {
	if err := s.auth.ensure(ctx, op, keyID); err != nil {
		return err
	}
	body := map[string]any{"options": map[string]any{"cas": cas}, "data": data}
	token := s.client.Token()
	start := time.Now()
	_, err := s.client.Logical().WriteWithContext(ctx, path, body)
	s.observed(op, start, true, err)
	if err == nil {
		return nil
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && mentionsCAS(re.Errors) {
		if keyID == "" {
			return fmt.Errorf("vault: %s: %w", op, casErr)
		}
		return fmt.Errorf("vault: %s %s: %w", op, keyID, casErr)
	}
	err = s.apiError(op, keyID, err)
	s.noteForbidden(err, token)
	return err
}

// mentionsCAS recognises KV v2's "check-and-set parameter did not match the
// current version" (the only signal Vault gives for a CAS mismatch).
func mentionsCAS(msgs []string) bool {
	for _, m := range msgs {
		if strings.Contains(m, "check-and-set") {
			return true
		}
	}
	return false
}

// List returns the names of the key entries (sorted by Vault). Entries
// written by hand may have names that are not valid key ids; sub-folders
// are left out. No entries is nil, not an error; a missing mount is an
// *Error.
func (s *Store) List(ctx context.Context) ([]string, error) {
	path := s.mount + "/metadata/" + s.base + "/keys"
	// GET ?list=true is Vault's LIST; reading it raw (unlike
	// Logical().List) tells "no entries" from "no such mount".
	e, err := s.read(ctx, "list", "", path, url.Values{"list": {"true"}}, maxAdminBody)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, name := range e.keys {
		if !strings.HasSuffix(name, "/") {
			ids = append(ids, name)
		}
	}
	return ids, nil
}
