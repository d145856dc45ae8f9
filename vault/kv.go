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

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/policy"
)

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

// present reports whether the read found something: live data, names, or
// a version (also a deleted one). The observer counts the rest as
// not_found.
func (e entry) present() bool { return e.found || e.keys != nil || e.version > 0 }

// readKV makes one GET of a KV v2 path, reading at most limit bytes of the
// response. A 404 from the KV engine, or a 200 whose data is null (deleted
// or destroyed version), is found=false; every answer that says nothing
// about the entry is an *Error.
func (s *Store) readKV(ctx context.Context, op Operation, keyID, path string, params url.Values, limit int64) (entry, error) {
	resp, err := s.client.Logical().ReadRawWithDataWithContext(ctx, path, params)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return entry{}, &Error{Op: op, KeyID: keyID, Err: err}
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	body, readErr := readBody(ctx, resp, err, limit)
	switch {
	case readErr != nil:
		return entry{}, &Error{Op: op, KeyID: keyID, Status: status, Err: readErr}
	case int64(len(body)) > limit && status == http.StatusOK && keyID != "":
		return entry{}, fmt.Errorf("vault: key %s: %w: Vault's response is over %d bytes", keyID, policy.ErrInvalidRecord, limit)
	case int64(len(body)) > limit:
		return entry{}, &Error{Op: op, KeyID: keyID, Status: status, Err: fmt.Errorf("response is over %d bytes", limit)}
	}
	return s.parseKV(op, keyID, status, body)
}

// readBody reads at most limit+1 bytes of the body of resp, the answer to
// a request made with ctx; err is vault/api's error for it. For an error
// status vault/api reads the body itself, and a failure of that read is
// err, as is a redirect it could not follow. A read cut by ctx's deadline
// or cancellation wraps ctx.Err() however the transport reported it (for a
// body vault/api read, as a closed connection), so that it is classified
// as a timeout or a cancellation.
func readBody(ctx context.Context, resp *vaultapi.Response, err error, limit int64) ([]byte, error) {
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if readErr == nil && err != nil && !isVaultStatusError(err) {
		readErr = err // vault/api gave up on this answer: a redirect it does not follow, an error body it could not read
	}
	switch {
	case readErr == nil:
		return body, nil
	case ctx.Err() != nil && !errors.Is(readErr, ctx.Err()):
		return nil, fmt.Errorf("reading the response: %w (%v)", ctx.Err(), readErr)
	}
	return nil, fmt.Errorf("reading the response: %w", readErr)
}

func isVaultStatusError(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re)
}

// parseKV turns a complete response into an entry or an *Error.
func (s *Store) parseKV(op Operation, keyID string, status int, body []byte) (entry, error) {
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
	return errors.New(summarize(msgs, s.client.Token()))
}

// summarize makes Vault's error strings one line of at most maxMessage
// bytes, with token (if not "") replaced by "[token]".
func summarize(msgs []string, token string) string {
	// One line: Vault's own multi-errors span several ("2 errors occurred:\n\t* ...").
	msg := strings.Join(strings.Fields(strings.Join(msgs, "; ")), " ")
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[token]")
	}
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "..." // not half a character
	}
	if msg == "" {
		msg = "no error message"
	}
	return msg
}
