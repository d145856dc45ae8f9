package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/keyadmin"
	kgserver "github.com/keygate/keygate/internal/server"
)

// The journal's writer (keyadmin) and its reader (internal/server) agree
// on the entry that names new keys.
func TestJournalOpNewKeysAgrees(t *testing.T) {
	if kgserver.JournalOpNewKeys != keyadmin.JournalOpNewKeys {
		t.Errorf("reader's %q != writer's %q", kgserver.JournalOpNewKeys, keyadmin.JournalOpNewKeys)
	}
}

// cliError says keyadmin's typed errors with the CLI's commands and flags,
// and leaves everything else, joined errors included, as it was.
func TestKeysCLIErrors(t *testing.T) {
	other := errors.New("vault: get: HTTP 503: sealed")
	tests := []struct {
		err  error
		want string
	}{
		{&keyadmin.ForceError{KeyID: "AAAAAAAAAAAA"}, "key AAAAAAAAAAAA is active: revoke it first (keygate keys revoke AAAAAAAAAAAA), or pass --force to delete it while in use"},
		{&keyadmin.ForceError{KeyID: "AAAAAAAAAAAA", Unreadable: errors.New("bad record")}, "bad record\nits status cannot be read: pass --force to delete it anyway"},
		{&keyadmin.RotateError{NewID: "BBBBBBBBBBBB", OldID: "AAAAAAAAAAAA", GraceEnd: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC), Err: other},
			"new key BBBBBBBBBBBB was created, but old key AAAAAAAAAAAA was NOT changed (finish with `keygate keys update AAAAAAAAAAAA --expires-at 2027-01-02T03:04:05Z` or `keygate keys revoke AAAAAAAAAAAA`): " + other.Error()},
		{&keyadmin.FieldError{Field: keyadmin.FieldRateBurst, Err: keyadmin.ErrNoRateLimit}, "--rate-burst: the key has no rate limit; give --rate-limit too"},
		{&keyadmin.FieldError{Field: keyadmin.FieldHash, Err: errors.New("no pepper")}, "--hash: no pepper"},
		{&keyadmin.FieldError{Field: keyadmin.FieldGrace, Err: errors.New("must be >= 0")}, "--grace: must be >= 0"},
		{&keyadmin.FieldError{Field: keyadmin.FieldUnusedFor, Err: keyadmin.ErrUnsupported}, "--unused-for: " + errNoUsage.Error()},
		{errors.Join(errors.New("--header (occurrence 1): want NAME=VALUE"), &keyadmin.FieldError{Field: keyadmin.FieldRateBurst, Err: keyadmin.ErrNoRateLimit}),
			"--header (occurrence 1): want NAME=VALUE\n--rate-burst: the key has no rate limit; give --rate-limit too"},
		{other, other.Error()},
		{keyadmin.ErrInvalidID, keyadmin.ErrInvalidID.Error()},
	}
	for _, tt := range tests {
		if got := cliError(tt.err); got == nil || got.Error() != tt.want {
			t.Errorf("cliError(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if cliError(nil) != nil {
		t.Error("cliError(nil) != nil")
	}
	if !strings.Contains(cliError(&keyadmin.FieldError{Field: keyadmin.FieldStatus, Err: errors.New("x")}).Error(), "status: x") {
		t.Error("a field without a flag kept its keyadmin text")
	}
}

// Warnings after a written change read as they always have.
func TestKeysPrintWarnings(t *testing.T) {
	var stderr syncBuffer
	k := &keysCtx{e: &env{stderr: &stderr}}
	printWarnings(k, []error{
		&keyadmin.JournalError{Op: keyadmin.JournalOpRevoke, Err: errors.New("HTTP 403")},
		errors.New("key AAAAAAAAAAAA is deleted, but its usage entry is not: HTTP 503"),
	})
	want := "keygate: warning: the revoke is written, but the change journal could not be: replicas apply it within their --max-record-age (--found-ttl if 0) instead of --journal-poll; " +
		"to apply it now, POST /v1/evict?id=<key id> to each replica's --admin-addr (HTTP 403)\n" +
		"keygate: warning: key AAAAAAAAAAAA is deleted, but its usage entry is not: HTTP 503\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}
