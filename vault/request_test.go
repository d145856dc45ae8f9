package vault

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// seen is one call of the observer.
type seen struct{ op, class string }

// recorder is an Observer that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls []seen
}

func (r *recorder) observe(op, class string, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took < 0 {
		class += " (negative duration)"
	}
	r.calls = append(r.calls, seen{op, class})
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.calls...)
}

// Callers' outcomes that are not an *Error's class.
const (
	seesNil      = "nil"
	seesNotFound = "ErrKeyNotFound"
	seesInvalid  = "ErrInvalidRecord"
	seesExists   = "ErrKeyExists"
)

// checkSees asserts err is what the caller should see: one of the sees*
// outcomes, or else an *Error of that class.
func checkSees(t *testing.T, err error, want string) {
	t.Helper()
	var e *Error
	isError := errors.As(err, &e)
	var ok bool
	switch want {
	case seesNil:
		ok = err == nil
	case seesNotFound:
		ok = errors.Is(err, policy.ErrKeyNotFound) && !isError
	case seesInvalid:
		ok = errors.Is(err, policy.ErrInvalidRecord) && !isError
	case seesExists:
		ok = errors.Is(err, policy.ErrKeyExists) && !isError
	default:
		ok = isError && e.Class() == want && !errors.Is(err, policy.ErrKeyNotFound)
	}
	if !ok {
		t.Errorf("caller sees %v (%T), want %s", err, err, want)
	}
	if err != nil && strings.Contains(err.Error(), fakeToken) {
		t.Errorf("error %q contains the Vault token", err)
	}
}

// call is one Store method under test, against a fake Vault.
type call struct {
	op     Operation
	method string // the HTTP method Vault must see
	run    func(ctx context.Context, s *Store, id string, rec *policy.Record) error
}

var (
	lookupCall = call{OpLookup, http.MethodGet, func(ctx context.Context, s *Store, id string, _ *policy.Record) error {
		_, err := s.Lookup(ctx, id)
		return err
	}}
	listCall = call{OpList, http.MethodGet, func(ctx context.Context, s *Store, _ string, _ *policy.Record) error {
		_, err := s.List(ctx)
		return err
	}}
	createCall = call{OpCreate, http.MethodPut, func(ctx context.Context, s *Store, id string, rec *policy.Record) error {
		return s.Create(ctx, id, rec)
	}}
	usageCall = call{OpRecordUsage, http.MethodPut, func(ctx context.Context, s *Store, id string, _ *policy.Record) error {
		return s.RecordUsage(ctx, id, time.Now())
	}}
	deleteCall = call{OpDeleteUsage, http.MethodDelete, func(ctx context.Context, s *Store, id string, _ *policy.Record) error {
		return s.softDelete(ctx, OpDeleteUsage, id, s.usagePath(id))
	}}
)

// TestDoClassifies: every kind of request (read, write, delete) and every
// answer, through Store.do. The caller sees one outcome, the observer sees
// the request exactly once with its operation and class, and only a 403
// reaches the token manager, with the token that was sent.
func TestDoClassifies(t *testing.T) {
	id, rec := newRecord(t)
	recJSON, err := json.Marshal(rec)
	check(t, err)
	live := `{"data":{"data":` + string(recJSON) + `,"metadata":{"version":1}}}`
	const deletedVersion = `{"errors":[],"data":{"data":null,"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z"}}}`
	const casMismatch = `{"errors":["check-and-set parameter did not match the current version"]}`
	tests := []struct {
		name     string
		call     call
		status   int
		body     string
		slow     bool // the answer comes after the Store's timeout
		sees     string
		observed string
	}{
		{"read: live record", lookupCall, 200, live, false, seesNil, ClassOK},
		{"read: Vault's 404", lookupCall, 404, `{"errors":[]}`, false, seesNotFound, ClassNotFound},
		// The observer counts any read that names a version as ok (as
		// before Store.do); only the caller is told the key is not found.
		{"read: deleted version", lookupCall, 404, deletedVersion, false, seesNotFound, ClassOK},
		// A record is parsed after the request, which the observer counts
		// as ok; a 200 too big to be a record is invalid_record.
		{"read: record that does not parse", lookupCall, 200, `{"data":{"data":{"hash":7}}}`, false, seesInvalid, ClassOK},
		{"read: 200 too big for a record", lookupCall, 200, strings.Repeat(" ", maxBody+1), false, seesInvalid, ClassInvalidRecord},
		{"read: 403", lookupCall, 403, `{"errors":["permission denied"]}`, false, ClassForbidden, ClassForbidden},
		{"read: 429", lookupCall, 429, `{"errors":["rate limit quota exceeded"]}`, false, ClassRateLimited, ClassRateLimited},
		{"read: sealed", lookupCall, 503, `{"errors":["Vault is sealed"]}`, false, ClassUnavailable, ClassUnavailable},
		{"read: 500", lookupCall, 500, `oops`, false, ClassServerError, ClassServerError},
		{"read: proxy 404", lookupCall, 404, `<html>`, false, ClassClientError, ClassClientError},
		{"read: 200 junk", lookupCall, 200, `junk`, false, ClassBadResponse, ClassBadResponse},
		{"read: slow", lookupCall, 200, live, true, ClassTimeout, ClassTimeout},
		{"list: names", listCall, 200, `{"data":{"keys":["a","b/"]}}`, false, seesNil, ClassOK},
		{"list: none", listCall, 404, `{"errors":[]}`, false, seesNil, ClassNotFound},
		{"list: 403", listCall, 403, `{"errors":["permission denied"]}`, false, ClassForbidden, ClassForbidden},
		{"write: ok", createCall, 200, `{"data":{"version":1}}`, false, seesNil, ClassOK},
		{"write: CAS mismatch", createCall, 400, casMismatch, false, seesExists, ClassClientError},
		{"write: other 400", createCall, 400, `{"errors":["invalid request"]}`, false, ClassClientError, ClassClientError},
		{"write: 403", createCall, 403, `{"errors":["permission denied"]}`, false, ClassForbidden, ClassForbidden},
		{"write: sealed", usageCall, 503, `{"errors":["Vault is sealed"]}`, false, ClassUnavailable, ClassUnavailable},
		{"write: 502 junk", usageCall, 502, `<html>`, false, ClassServerError, ClassServerError},
		{"write: 429", usageCall, 429, `{"errors":["rate limit quota exceeded"]}`, false, ClassRateLimited, ClassRateLimited},
		{"write: slow", usageCall, 204, ``, true, ClassTimeout, ClassTimeout},
		{"delete: ok", deleteCall, 204, ``, false, seesNil, ClassOK},
		{"delete: 403", deleteCall, 403, `{"errors":["permission denied"]}`, false, ClassForbidden, ClassForbidden},
		{"delete: 500", deleteCall, 500, `{"errors":["internal error"]}`, false, ClassServerError, ClassServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests []string
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests = append(requests, r.Method+" "+r.Header.Get("X-Vault-Token"))
				mu.Unlock()
				io.Copy(io.Discard, r.Body) // so the server notices the client giving up
				if tt.slow {
					select {
					case <-time.After(3 * time.Second):
					case <-r.Context().Done():
					}
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			s := fakeStore(t, srv.URL, 200*time.Millisecond)
			var obs recorder
			s.SetObserver(obs.observe)

			err := tt.call.run(context.Background(), s, id, rec)

			checkSees(t, err, tt.sees)
			if got, want := obs.all(), []seen{{string(tt.call.op), tt.observed}}; len(got) != 1 || got[0] != want[0] {
				t.Errorf("observer saw %v, want exactly %v", got, want)
			}
			mu.Lock()
			if want := tt.call.method + " " + fakeToken; len(requests) != 1 || requests[0] != want {
				t.Errorf("Vault saw %q, want exactly one %q", requests, want)
			}
			mu.Unlock()
			checkForbiddenNoted(t, s, tt.observed == ClassForbidden)
		})
	}
}

// checkForbiddenNoted asserts the token manager was told of a 403 to
// fakeToken once if want, else not at all.
func checkForbiddenNoted(t *testing.T, s *Store, want bool) {
	t.Helper()
	var noted []string
	for len(s.auth.forbidden) > 0 {
		noted = append(noted, <-s.auth.forbidden)
	}
	switch {
	case want && (len(noted) != 1 || noted[0] != fakeToken):
		t.Errorf("token manager told of %d refused tokens, want the sent token once", len(noted))
	case !want && len(noted) != 0:
		t.Errorf("token manager told of a refused token for an answer that is not a 403")
	}
}

// TestDoUnreachable: no answer at all, for a read and a write.
func TestDoUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	id, rec := newRecord(t)
	for _, c := range []call{lookupCall, createCall, deleteCall} {
		t.Run(string(c.op), func(t *testing.T) {
			s := fakeStore(t, addr, time.Second)
			var obs recorder
			s.SetObserver(obs.observe)
			checkSees(t, c.run(context.Background(), s, id, rec), ClassUnreachable)
			if got := obs.all(); len(got) != 1 || got[0] != (seen{string(c.op), ClassUnreachable}) {
				t.Errorf("observer saw %v, want exactly one %s %s", got, c.op, ClassUnreachable)
			}
			checkForbiddenNoted(t, s, false)
		})
	}
}

// TestDoNoToken: while the token manager runs but has not logged in yet,
// do makes no request and reports none.
func TestDoNoToken(t *testing.T) {
	var requests int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
	}))
	defer srv.Close()
	s := fakeStore(t, srv.URL, time.Second)
	s.auth.static = false // as with a login method, before the first login
	s.client.SetToken("")
	s.auth.running.Store(true)
	var obs recorder
	s.SetObserver(obs.observe)
	id, rec := newRecord(t)
	for _, c := range []call{lookupCall, createCall, usageCall, deleteCall} {
		err := c.run(context.Background(), s, id, rec)
		var e *Error
		if !errors.Is(err, ErrNotLoggedIn) || !errors.As(err, &e) || e.Op != c.op {
			t.Errorf("%s = %v, want an *Error of op %s wrapping ErrNotLoggedIn", c.op, err, c.op)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 0 || len(obs.all()) != 0 {
		t.Errorf("%d requests reached Vault, observer saw %v; want none", requests, obs.all())
	}
}

// TestOutcomeClass: the observer's class for each form a request's result
// takes.
func TestOutcomeClass(t *testing.T) {
	tests := []struct {
		name   string
		absent bool
		err    error
		want   string
	}{
		{"answer", false, nil, ClassOK},
		{"no such entry", true, nil, ClassNotFound},
		{"invalid record", false, errors.Join(errors.New("vault: key x"), policy.ErrInvalidRecord), ClassInvalidRecord},
		{"403", false, &Error{Op: OpGet, Status: 403, Err: errors.New("permission denied")}, ClassForbidden},
		{"wrapped *Error", false, errors.Join(errors.New("ctx"), &Error{Status: 503}), ClassUnavailable},
		{"deadline, no *Error", false, context.DeadlineExceeded, ClassTimeout},
		{"canceled, no *Error", false, context.Canceled, ClassCanceled},
		{"other, no *Error", true, errors.New("connection refused"), ClassUnreachable},
	}
	for _, tt := range tests {
		if got := outcomeClass(tt.absent, tt.err); got != tt.want {
			t.Errorf("%s: outcomeClass = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestOperationLabels pins the operation label values: dashboards, alerts
// and recorded series name them, so a constant's value must not change.
// (Two constants with one value would not compile here: duplicate keys.)
func TestOperationLabels(t *testing.T) {
	want := map[Operation]string{
		OpLookup: "lookup", OpGet: "get", OpList: "list", OpCreate: "create", OpUpdate: "update",
		OpDelete: "delete", OpDeleteUsage: "delete_usage", OpJournal: "journal",
		OpAppendJournal: "append_journal", OpPeppers: "peppers", OpInitPepper: "init_pepper",
		OpRecordUsage: "record_usage", OpLastUsed: "last_used", OpLogin: "login",
		OpHotKeys: "hot_keys", OpRecordHotKeys: "record_hot_keys",
	}
	for op, label := range want {
		if string(op) != label {
			t.Errorf("operation %q, want the label %q", op, label)
		}
	}
}
