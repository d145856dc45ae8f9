package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/policy"
)

// Bounds on how much of a KV read response is read. maxBody (hot path,
// peppers) fits a record of policy.MaxRecordSize plus Vault's envelope and
// the entry's custom_metadata at Vault's limits (64 keys of 128 bytes with
// values of 512: 40 KiB), each byte of which Vault may send as 6 (it
// escapes < > & as \u003c); a larger 200 response is an invalid record.
// maxAdminBody (Get) is Vault's default max request size, so Get can still
// return the version of an oversized record to fix.
const (
	maxCustomMetadata = 64 * (128 + 512)
	maxBody           = policy.MaxRecordSize + 6*maxCustomMetadata + 16<<10
	maxAdminBody      = 32<<20 + 16<<10
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
	mount   string // the KV v2 mount, or the plugin's (engine)
	kvMount string // the KV v2 mount of peppers, key use and hot keys: mount, or KVMount with the plugin
	base    string
	engine  string   // EngineKV or EnginePlugin
	observe Observer // nil: none
}

// New returns a Store for cfg, which it validates and does not complete
// (start from DefaultConfig). TLS settings come from cfg, else from the
// usual VAULT_CACERT/VAULT_CLIENT_CERT/... environment variables; address,
// token, namespace, timeout and retries come only from cfg: the client
// makes exactly one attempt per request. With a login method or a token
// file, run s.Auth().Run to keep the token fresh; without it the first
// request logs in.
func New(cfg Config) (*Store, error) {
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
	s := &Store{client: client, auth: auth, timeout: cfg.Timeout, mount: cfg.Mount, kvMount: cfg.Mount, base: cfg.BasePath, engine: cfg.Engine}
	if s.plugin() {
		s.kvMount = cfg.KVMount
	}
	return s, nil
}

// Auth returns the Store's token manager; callers run its Run method for
// the Store's lifetime and wait on Ready before reporting healthy.
func (s *Store) Auth() *Auth { return s.auth }

func (s *Store) keyPath(keyID string) string {
	if s.plugin() {
		return s.mount + "/keys/" + keyID
	}
	return s.mount + "/data/" + s.base + "/keys/" + keyID
}

// Lookup is the hot-path read of one key's record. It returns
// policy.ErrKeyNotFound when Vault has no live record (never written,
// deleted, destroyed), an error wrapping policy.ErrInvalidRecord when the
// stored record does not parse or validate, and otherwise an *Error: Vault
// could not answer, and the caller should treat the failure as transient.
func (s *Store) Lookup(ctx context.Context, keyID string) (*policy.Record, error) {
	if !policy.ValidID(keyID) {
		return nil, fmt.Errorf("vault: %s: %w: %w", OpLookup, policy.ErrKeyNotFound, ErrInvalidID)
	}
	rec, _, err := s.readRecord(ctx, OpLookup, keyID, maxBody)
	return rec, err
}

// readRecord reads and parses a key's record. No live record is
// policy.ErrKeyNotFound; one that does not parse is an error wrapping
// policy.ErrInvalidRecord, returned with its version.
func (s *Store) readRecord(ctx context.Context, op Operation, keyID string, limit int64) (*policy.Record, int, error) {
	if s.plugin() {
		return s.readPluginRecord(ctx, op, keyID, limit)
	}
	e, err := s.read(ctx, op, keyID, s.keyPath(keyID), nil, limit)
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

// Get reads a key's record and its KV version for a later Update. A record
// that does not parse is returned as an error wrapping
// policy.ErrInvalidRecord together with its version, so it can be fixed.
func (s *Store) Get(ctx context.Context, keyID string) (*policy.Record, int, error) {
	if !policy.ValidID(keyID) {
		return nil, 0, fmt.Errorf("vault: %s: %w", OpGet, ErrInvalidID)
	}
	return s.readRecord(ctx, OpGet, keyID, maxAdminBody)
}

// Create writes a new key's record; it never overwrites: an existing entry
// (even one whose latest version is deleted) is policy.ErrKeyExists.
func (s *Store) Create(ctx context.Context, keyID string, rec *policy.Record) error {
	return s.writeRecord(ctx, OpCreate, keyID, rec, 0, policy.ErrKeyExists)
}

// Update replaces a key's record if its KV version is still version (from
// Get); otherwise it returns policy.ErrConflict.
func (s *Store) Update(ctx context.Context, keyID string, rec *policy.Record, version int) error {
	if version < 1 {
		return fmt.Errorf("vault: %s %s: version %d: must be >= 1 (from Get)", OpUpdate, keyID, version)
	}
	return s.writeRecord(ctx, OpUpdate, keyID, rec, version, policy.ErrConflict)
}

// writeRecord validates rec and writes it with check-and-set cas; a CAS
// mismatch is casErr. The record's fields are the KV data, so the Vault UI
// shows them.
func (s *Store) writeRecord(ctx context.Context, op Operation, keyID string, rec *policy.Record, cas int, casErr error) error {
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
	if s.plugin() {
		return s.writePluginRecord(ctx, op, keyID, data, cas, casErr)
	}
	return s.casWrite(ctx, op, keyID, s.keyPath(keyID), json.RawMessage(data), cas, casErr)
}

// List returns the names of the key entries (sorted by Vault). Entries
// written by hand may have names that are not valid key ids; sub-folders
// are left out. No entries is nil, not an error; a missing mount is an
// *Error.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if s.plugin() {
		return s.listPluginKeys(ctx)
	}
	path := s.mount + "/metadata/" + s.base + "/keys"
	// GET ?list=true is Vault's LIST; reading it raw (unlike
	// Logical().List) tells "no entries" from "no such mount".
	e, err := s.read(ctx, OpList, "", path, url.Values{"list": {"true"}}, maxAdminBody)
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
