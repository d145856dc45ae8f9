package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/policy"
)

// Operation names one kind of request the Store makes to Vault. It is the
// operation label of keygate_vault_requests_total and
// keygate_vault_request_duration_seconds and the Op of an *Error. The set
// is closed: dashboards and alerts name these values.
type Operation string

// The operations. Each public Store method uses its own, except where noted.
const (
	OpLookup        Operation = "lookup"          // Lookup: the hot path's read of a record
	OpGet           Operation = "get"             // Get, and Delete's read of the record
	OpList          Operation = "list"            // List
	OpCreate        Operation = "create"          // Create
	OpUpdate        Operation = "update"          // Update
	OpDelete        Operation = "delete"          // Delete: the record's soft delete
	OpDeleteUsage   Operation = "delete_usage"    // Delete: the usage entry's soft delete
	OpJournal       Operation = "journal"         // reads of the journal (JournalSince, AppendJournal)
	OpAppendJournal Operation = "append_journal"  // AppendJournal's check-and-set write
	OpPeppers       Operation = "peppers"         // Peppers
	OpInitPepper    Operation = "init_pepper"     // InitPepper: its read and its write
	OpRecordUsage   Operation = "record_usage"    // RecordUsage
	OpLastUsed      Operation = "last_used"       // LastUsed
	OpHotKeys       Operation = "hot_keys"        // HotKeys: reads of the hot-key slots (a warm-up)
	OpRecordHotKeys Operation = "record_hot_keys" // RecordHotKeys: its reads and check-and-set writes of the slots
	OpLogin         Operation = "login"           // the token manager's logins (never observed)
)

// errCASMismatch is KV v2's answer (HTTP 400) to a check-and-set write
// whose version is not the current one.
var errCASMismatch = errors.New("check-and-set parameter did not match the current version")

// do makes one Vault request for op, every request the Store makes goes
// through it. It makes sure there is a token (a one-shot command's first
// request logs in; no token, no request), bounds call by the Store's
// timeout, turns call's error into the one form requestError gives,
// reports the request to the observer exactly once, and hands a 403 to the
// token manager with the token that was sent (it confirms the token itself
// is refused before logging in again). call says absent when Vault
// answered that there is no such entry.
func (s *Store) do(ctx context.Context, op Operation, keyID string, call func(ctx context.Context) (absent bool, err error)) error {
	if err := s.auth.ensure(ctx, op, keyID); err != nil {
		return err
	}
	token := s.client.Token()
	start := time.Now()
	reqCtx, cancel := context.WithTimeout(ctx, s.timeout)
	absent, err := call(reqCtx)
	cancel()
	err = s.requestError(op, keyID, err)
	s.observed(op, start, absent, err)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusForbidden {
		s.auth.noteForbidden(token)
	}
	return err
}

// requestError gives a failed request one of two forms: an error wrapping
// policy.ErrInvalidRecord (a 200 too big to be a record), or an *Error
// naming op and keyID with Vault's status and messages, never the token or
// a raw body. A check-and-set mismatch is an *Error (HTTP 400) wrapping
// errCASMismatch.
func (s *Store) requestError(op Operation, keyID string, err error) error {
	var e *Error
	var re *vaultapi.ResponseError
	switch {
	case err == nil, errors.As(err, &e), errors.Is(err, policy.ErrInvalidRecord):
		return err
	case !errors.As(err, &re): // no response: refused, reset, TLS, timeout, canceled
		return &Error{Op: op, KeyID: keyID, Err: err}
	case re.StatusCode == http.StatusBadRequest && mentionsCAS(re.Errors):
		return &Error{Op: op, KeyID: keyID, Status: re.StatusCode, Err: errCASMismatch}
	}
	var decodeErr error
	if re.RawError {
		decodeErr = errors.New("raw")
	}
	msg := s.vaultMessage(re.Errors, decodeErr, len(strings.Join(re.Errors, "")))
	return &Error{Op: op, KeyID: keyID, Status: re.StatusCode, Err: msg}
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

// read GETs a KV v2 path, reading at most limit bytes of the response (see
// readKV).
func (s *Store) read(ctx context.Context, op Operation, keyID, path string, params url.Values, limit int64) (entry, error) {
	var e entry
	err := s.do(ctx, op, keyID, func(ctx context.Context) (bool, error) {
		var err error
		e, err = s.readKV(ctx, op, keyID, path, params, limit)
		return !e.present(), err
	})
	return e, err
}

// write PUTs body to a KV v2 data path.
func (s *Store) write(ctx context.Context, op Operation, keyID, path string, body map[string]any) error {
	return s.do(ctx, op, keyID, func(ctx context.Context) (bool, error) {
		_, err := s.client.Logical().WriteWithContext(ctx, path, body)
		return false, err
	})
}

// casWrite writes data to a KV v2 data path with check-and-set cas; a CAS
// mismatch is casErr.
func (s *Store) casWrite(ctx context.Context, op Operation, keyID, path string, data any, cas int, casErr error) error {
	body := map[string]any{"options": map[string]any{"cas": cas}, "data": data}
	err := s.write(ctx, op, keyID, path, body)
	switch {
	case !errors.Is(err, errCASMismatch):
		return err
	case keyID == "":
		return fmt.Errorf("vault: %s: %w", op, casErr)
	}
	return fmt.Errorf("vault: %s %s: %w", op, keyID, casErr)
}

// softDelete DELETEs a KV v2 data path: a soft delete of its latest
// version (a no-op if there is none).
func (s *Store) softDelete(ctx context.Context, op Operation, keyID, path string) error {
	return s.do(ctx, op, keyID, func(ctx context.Context) (bool, error) {
		_, err := s.client.Logical().DeleteWithContext(ctx, path)
		return false, err
	})
}
