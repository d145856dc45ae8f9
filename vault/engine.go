package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/keygate/keygate/policy"
)

// Where key records live: the KV v2 layout (the default) or keygate's
// Vault secrets engine (cmd/keygate-vault-plugin, docs/vault-plugin.md).
const (
	EngineKV     = "kv"
	EnginePlugin = "plugin"
)

// With EnginePlugin, records and the change journal are the plugin's:
//
//	<mount>/keys/<id>   read  {"record": {...}, "version": N, "role": "..."}; 404: no live key
//	                    write {"record": {...}, "cas": N}: 0 creates (an id is never reused), N replaces version N
//	                    delete (the id stays reserved)
//	<mount>/keys        list
//	<mount>/journal     read ?after=N  {"entries": [{version, op, ids, at}], "latest": L, "complete": bool}
//
//	<mount>/journal     write {"op": "...", "ids": [...]}: append an entry
//
// The plugin journals its own operations (issue, lease revoke and renewal,
// keys/<id>/revoke and rotate, import) and, by default, every write to
// keys/<id> made by other clients. keygate's CLI journals its changes
// itself, as with KV (keyadmin names the operation: revoke, rotate...), so
// its writes ask the plugin not to ("journal": false). Peppers, key use and
// hot-key slots stay in KV v2 at KVMount/BasePath (the plugin hashes with
// SHA-256).

func (s *Store) plugin() bool { return s.engine == EnginePlugin }

// pluginEnvelope is the part of a plugin read response keygate uses.
type pluginEnvelope struct {
	Errors []string `json:"errors"`
	Data   *struct {
		Record  json.RawMessage `json:"record"`
		Version int             `json:"version"`
		Keys    []string        `json:"keys"` // LIST
		Entries []struct {
			Version int      `json:"version"`
			Op      string   `json:"op"`
			IDs     []string `json:"ids"`
			At      string   `json:"at"`
		} `json:"entries"`
		Latest   *int `json:"latest"`
		Complete bool `json:"complete"`
	} `json:"data"`
}

// readPlugin GETs a plugin path, reading at most limit bytes. A 404 with
// Vault's "errors" field empty is found=false; any other failure, or an
// answer that is not the plugin's, is an *Error (or, for an oversized
// record, policy.ErrInvalidRecord).
func (s *Store) readPlugin(ctx context.Context, op Operation, keyID, path string, params url.Values, limit int64) (pluginEnvelope, bool, error) {
	var env pluginEnvelope
	found := false
	err := s.do(ctx, op, keyID, func(ctx context.Context) (bool, error) {
		resp, err := s.client.Logical().ReadRawWithDataWithContext(ctx, path, params)
		if resp == nil {
			if err == nil {
				err = errors.New("no response")
			}
			return false, &Error{Op: op, KeyID: keyID, Err: err}
		}
		defer resp.Body.Close()
		status := resp.StatusCode
		body, readErr := readBody(ctx, resp, err, limit)
		switch {
		case readErr != nil:
			return false, &Error{Op: op, KeyID: keyID, Status: status, Err: readErr}
		case int64(len(body)) > limit && status == http.StatusOK && keyID != "":
			return false, fmt.Errorf("vault: key %s: %w: Vault's response is over %d bytes", keyID, policy.ErrInvalidRecord, limit)
		case int64(len(body)) > limit:
			return false, &Error{Op: op, KeyID: keyID, Status: status, Err: fmt.Errorf("response is over %d bytes", limit)}
		}
		decodeErr := json.Unmarshal(body, &env)
		switch {
		case status != http.StatusOK && status != http.StatusNotFound:
			return false, &Error{Op: op, KeyID: keyID, Status: status, Err: s.vaultMessage(env.Errors, decodeErr, len(body))}
		case decodeErr != nil:
			return false, &Error{Op: op, KeyID: keyID, Status: status, Err: fmt.Errorf("response is not the plugin's JSON: %w", decodeErr)}
		case status == http.StatusNotFound && (env.Errors == nil || len(env.Errors) > 0):
			// {"errors":[]} is "no such entry"; a message ("no handler for
			// route": no plugin at the mount) or no errors field (not
			// Vault) says nothing about the key.
			return false, &Error{Op: op, KeyID: keyID, Status: status, Err: s.vaultMessage(env.Errors, errors.New(`404 without Vault's empty "errors"`), len(body))}
		case status == http.StatusOK && env.Data == nil:
			return false, &Error{Op: op, KeyID: keyID, Status: status, Err: errors.New(`response has no "data" object`)}
		}
		found = status == http.StatusOK
		return !found, nil
	})
	return env, found, err
}

// readPluginRecord reads a key's record from the plugin.
func (s *Store) readPluginRecord(ctx context.Context, op Operation, keyID string, limit int64) (*policy.Record, int, error) {
	env, found, err := s.readPlugin(ctx, op, keyID, s.keyPath(keyID), nil, limit)
	if err != nil {
		return nil, 0, err
	}
	if !found {
		return nil, 0, fmt.Errorf("vault: key %s: %w", keyID, policy.ErrKeyNotFound)
	}
	if len(env.Data.Record) == 0 || string(env.Data.Record) == "null" {
		return nil, 0, &Error{Op: op, KeyID: keyID, Status: http.StatusOK, Err: errors.New(`the plugin's answer has no "record"`)}
	}
	rec, err := policy.ParseRecord(env.Data.Record)
	if err != nil {
		return nil, env.Data.Version, fmt.Errorf("vault: key %s: %w: %w", keyID, policy.ErrInvalidRecord, err)
	}
	return rec, env.Data.Version, nil
}

// writePluginRecord writes a validated record's JSON with check-and-set.
func (s *Store) writePluginRecord(ctx context.Context, op Operation, keyID string, data json.RawMessage, cas int, casErr error) error {
	err := s.write(ctx, op, keyID, s.keyPath(keyID), map[string]any{"record": data, "cas": cas, "journal": false})
	if errors.Is(err, errCASMismatch) {
		return fmt.Errorf("vault: %s %s: %w", op, keyID, casErr)
	}
	return err
}

// deletePluginKey deletes a key in the plugin (its id stays reserved).
func (s *Store) deletePluginKey(ctx context.Context, keyID string) error {
	if _, _, err := s.readPluginRecord(ctx, OpGet, keyID, maxAdminBody); err != nil && !errors.Is(err, policy.ErrInvalidRecord) {
		return err // not found, or Vault failed; an invalid record may be deleted
	}
	err := s.do(ctx, OpDelete, keyID, func(ctx context.Context) (bool, error) {
		_, err := s.client.Logical().DeleteWithDataWithContext(ctx, s.keyPath(keyID), map[string][]string{"journal": {"false"}})
		return false, err
	})
	if err != nil {
		return err
	}
	if err := s.softDelete(ctx, OpDeleteUsage, keyID, s.usagePath(keyID)); err != nil {
		return fmt.Errorf("key %s is deleted, but %w: %w", keyID, ErrUsageKept, err)
	}
	return nil
}

// listPluginKeys lists the plugin's live key ids.
func (s *Store) listPluginKeys(ctx context.Context) ([]string, error) {
	env, found, err := s.readPlugin(ctx, OpList, "", s.mount+"/keys", url.Values{"list": {"true"}}, maxAdminBody)
	if err != nil || !found {
		return nil, err
	}
	return env.Data.Keys, nil
}

// appendPluginJournal appends an entry to the plugin's journal.
func (s *Store) appendPluginJournal(ctx context.Context, op string, ids []string) error {
	if ids == nil {
		ids = []string{}
	}
	return s.write(ctx, OpAppendJournal, "", s.mount+"/journal", map[string]any{"op": op, "ids": ids})
}

// pluginJournalSince reads the plugin's change journal after version after.
func (s *Store) pluginJournalSince(ctx context.Context, after int) ([]JournalEntry, int, bool, error) {
	env, found, err := s.readPlugin(ctx, OpJournal, "", s.mount+"/journal", url.Values{"after": {strconv.Itoa(after)}}, maxBody)
	switch {
	case err != nil:
		return nil, after, false, err
	case !found || env.Data.Latest == nil:
		return nil, after, false, &Error{Op: OpJournal, Status: http.StatusOK, Err: errors.New(`the plugin's journal answer has no "latest"`)}
	}
	out := make([]JournalEntry, 0, len(env.Data.Entries))
	for _, e := range env.Data.Entries {
		out = append(out, JournalEntry{Version: e.Version, Op: e.Op, IDs: e.IDs, At: e.At})
	}
	latest := *env.Data.Latest
	if after < 0 {
		return nil, latest, true, nil
	}
	return out, latest, env.Data.Complete, nil
}
