package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// kvEnvelope is the part of a KV v2 read response that keygate uses. The
// record stays raw so that policy.ParseRecord decodes it strictly.
type kvEnvelope struct {
	Errors []string `json:"errors"`
	Data   *struct {
		Data     json.RawMessage `json:"data"`
		Keys     []string        `json:"keys"` // LIST responses
		Metadata *struct {
			Version      int    `json:"version"`
			DeletionTime string `json:"deletion_time"`
			Destroyed    bool   `json:"destroyed"`
		} `json:"metadata"`
	} `json:"data"`
}

// entry is one KV v2 read: the data object of the latest version, if it is
// live, and the latest version number (also when it is deleted, if Vault
// said); or, for a LIST, the names.
type entry struct {
	data    json.RawMessage
	version int
	found   bool
	keys    []string
}

// read GETs a KV v2 path with the configured timeout, reading at most
// limit bytes of the response. A 404 from the KV engine, or a 200 whose
// data is null (deleted or destroyed version), is found=false; every answer
// that says nothing about the entry is an *Error.
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

func (s *Store) readRaw(ctx context.Context, op, keyID, path string, params url.Values, limit int64) (entry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.client.Logical().ReadRawWithDataWithContext(ctx, path, params)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return entry{}, &Error{Op: op, KeyID: keyID, Err: err}
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if readErr == nil && err != nil && !isVaultStatusError(err) {
		readErr = err // vault/api failed reading an error response's body
	}
	switch {
	case readErr != nil && ctx.Err() != nil && !errors.Is(readErr, ctx.Err()):
		return entry{}, &Error{Op: op, KeyID: keyID, Status: status, Err: fmt.Errorf("reading the response: %w (%v)", ctx.Err(), readErr)}
	case readErr != nil:
		return entry{}, &Error{Op: op, KeyID: keyID, Status: status, Err: fmt.Errorf("reading the response: %w", readErr)}
	case int64(len(body)) > limit && status == http.StatusOK && keyID != "":
		return entry{}, fmt.Errorf("vault: key %s: %w: Vault's response is over %d bytes", keyID, policy.ErrInvalidRecord, limit)
	case int64(len(body)) > limit:
		return entry{}, &Error{Op: op, KeyID: keyID, Status: status, Err: fmt.Errorf("response is over %d bytes", limit)}
	}
	return s.classify(op, keyID, status, body)
}

func isVaultStatusError(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re)
}

// classify turns a complete response into an entry or an *Error.
func (s *Store) classify(op, keyID string, status int, body []byte) (entry, error) {
	var env kvEnvelope
	decodeErr := json.Unmarshal(body, &env)
	fail := func(err error) (entry, error) {
		return entry{}, &Error{Op: op, KeyID: keyID, Status: status, Err: err}
	}
	switch {
	case status != http.StatusOK && status != http.StatusNotFound:
		return fail(s.vaultMessage(env.Errors, decodeErr, len(body)))
	case decodeErr != nil:
		return fail(fmt.Errorf("response is not a KV v2 JSON object: %w", decodeErr))
	case status == http.StatusNotFound && len(env.Errors) > 0:
		// "no handler for route": the mount or path is wrong, which says
		// nothing about the key.
		return fail(s.vaultMessage(env.Errors, nil, len(body)))
	case status == http.StatusNotFound && env.Errors == nil && (env.Data == nil || !deleted(env)):
		// Vault says "no such entry" as {"errors":[]}, and "deleted" as a
		// 404 with deletion metadata; any other 404 (an API gateway's, a
		// proxy's) says nothing about the key.
		return fail(errors.New(`404 without Vault's "errors" field: not Vault's answer`))
	case status == http.StatusOK && env.Data == nil:
		return fail(errors.New(`response has no "data" object`))
	case status == http.StatusOK && emptyData(env) && env.Data.Keys == nil && !deleted(env):
		return fail(errors.New(`response has no data and no deletion metadata`))
	}
	var e entry
	if env.Data != nil && env.Data.Metadata != nil {
		e.version = env.Data.Metadata.Version
	}
	if env.Data != nil {
		e.keys = env.Data.Keys
	}
	if status == http.StatusOK && env.Data != nil && len(env.Data.Data) > 0 && string(env.Data.Data) != "null" {
		e.data, e.found = env.Data.Data, true
	}
	return e, nil
}

func emptyData(env kvEnvelope) bool {
	return len(env.Data.Data) == 0 || string(env.Data.Data) == "null"
}

// deleted reports whether a KV v2 read is of a deleted or destroyed
// version (null data with deletion metadata).
func deleted(env kvEnvelope) bool {
	m := env.Data.Metadata
	return m != nil && (m.DeletionTime != "" || m.Destroyed)
}

// maxMessage bounds the Vault error text kept in an *Error.
const maxMessage = 300

// vaultMessage summarises Vault's error strings (or says the body was not
// Vault's JSON), bounded in length and with the token removed.
func (s *Store) vaultMessage(msgs []string, decodeErr error, size int) error {
	if decodeErr != nil {
		return fmt.Errorf("non-JSON response body (%d bytes)", size)
	}
	if len(msgs) == 0 {
		return errors.New("no error message")
	}
	// One line: Vault's own multi-errors span several ("2 errors occurred:\n\t* ...").
	msg := strings.Join(strings.Fields(strings.Join(msgs, "; ")), " ")
	if token := s.client.Token(); token != "" {
		msg = strings.ReplaceAll(msg, token, "[token]")
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	return errors.New(msg)
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
