package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/keygate/keygate/policy"
)

// limitCase is one answer of an exact size: body padded with spaces (still
// valid JSON) to size bytes, read by a Lookup of a key or by JournalSince
// (a read of no key), on either engine.
type limitCase struct {
	name    string
	engine  string
	journal bool // JournalSince(-1), else Lookup
	status  int
	body    string
	size    int
}

// TestReadLimitEdges: an answer of exactly maxBody bytes is read; one byte
// more is not. Over the limit, a 200 for a key's record is an invalid
// record (the key is denied, not retried as if Vault failed) and every
// other answer is a transient *Error. A real Vault cannot be made to answer
// with a body of an exact size, so an httptest server stands in for it.
func TestReadLimitEdges(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	id, rec := newRecord(t)
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	kvRecord := `{"data":{"data":` + string(data) + `,"metadata":{"version":3}}}`
	kvJournal := `{"data":{"data":{"op":"revoke","ids":[],"at":""},"metadata":{"version":7}}}`
	pluginRecord := `{"data":{"record":` + string(data) + `,"version":3}}`
	pluginJournal := `{"data":{"entries":[],"latest":7,"complete":true}}`

	read := []limitCase{
		{"kv record", EngineKV, false, 200, kvRecord, maxBody},
		{"kv journal", EngineKV, true, 200, kvJournal, maxBody},
		{"plugin record", EnginePlugin, false, 200, pluginRecord, maxBody},
		{"plugin journal", EnginePlugin, true, 200, pluginJournal, maxBody},
	}
	for _, tt := range read {
		t.Run("read/"+tt.name, func(t *testing.T) {
			s := limitStore(t, tt)
			if tt.journal {
				_, latest, complete, err := s.JournalSince(context.Background(), -1)
				if err != nil || latest != 7 || !complete {
					t.Errorf("JournalSince of a %d-byte answer = latest %d complete %v, %v; want 7 true <nil>", tt.size, latest, complete, err)
				}
				return
			}
			got, err := s.Lookup(context.Background(), id)
			if err != nil {
				t.Fatalf("Lookup of a %d-byte answer: %v", tt.size, err)
			}
			if diff := cmp.Diff(rec, got, ignoreCompiled); diff != "" {
				t.Errorf("Lookup (-want +got):\n%s", diff)
			}
		})
	}

	refused := []struct {
		limitCase
		class string // "": an invalid record, else the *Error's class
	}{
		{limitCase{"kv record", EngineKV, false, 200, kvRecord, maxBody + 1}, ""},
		{limitCase{"kv 500", EngineKV, false, 500, `{"errors":["boom"]}`, maxBody + 1}, ClassServerError},
		{limitCase{"kv journal", EngineKV, true, 200, kvJournal, maxBody + 1}, ClassBadResponse},
		{limitCase{"plugin record", EnginePlugin, false, 200, pluginRecord, maxBody + 1}, ""},
		{limitCase{"plugin 500", EnginePlugin, false, 500, `{"errors":["boom"]}`, maxBody + 1}, ClassServerError},
		{limitCase{"plugin journal", EnginePlugin, true, 200, pluginJournal, maxBody + 1}, ClassBadResponse},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			s := limitStore(t, tt.limitCase)
			var err error
			if tt.journal {
				_, _, _, err = s.JournalSince(context.Background(), -1)
			} else {
				var got *policy.Record
				if got, err = s.Lookup(context.Background(), id); got != nil {
					t.Errorf("Lookup of a %d-byte answer returned a record", tt.size)
				}
			}
			if tt.class == "" {
				var verr *Error
				if !errors.Is(err, policy.ErrInvalidRecord) || errors.As(err, &verr) {
					t.Errorf("a %d-byte 200 for a record = %v, want ErrInvalidRecord, not an *Error", tt.size, err)
				}
				return
			}
			checkTransient(t, err, tt.class, tt.status, fakeToken)
		})
	}
}

// limitStore is a Store of tt's engine on an httptest server that answers
// every request with tt's status and body, padded to tt.size bytes.
func limitStore(t *testing.T, tt limitCase) *Store {
	t.Helper()
	if len(tt.body) > tt.size {
		t.Fatalf("body of %d bytes does not fit in %d", len(tt.body), tt.size)
	}
	body := tt.body + strings.Repeat(" ", tt.size-len(tt.body))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(tt.status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return engineStore(t, tt.engine, srv.URL, 5*time.Second)
}

// TestErrorBodyCap: vault/api reads the body of an error answer (status
// 400 or more) whole before keygate sees it, so capErrorBodies caps it: an
// endless error page is given up after maxBody bytes as a transient *Error
// that says so, on both engines, while an error body of exactly maxBody
// (a KV 404 carries the deleted entry's metadata) is still read and
// understood.
func TestErrorBodyCap(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	id, _ := newRecord(t)
	for _, engine := range []string{EngineKV, EnginePlugin} {
		t.Run(engine+"/404 of exactly maxBody", func(t *testing.T) {
			s := limitStore(t, limitCase{engine: engine, status: 404, body: `{"errors":[]}`, size: maxBody})
			if _, err := s.Lookup(context.Background(), id); !errors.Is(err, policy.ErrKeyNotFound) {
				t.Errorf("Lookup = %v, want ErrKeyNotFound", err)
			}
		})
		for _, tt := range []struct {
			status int
			class  string
		}{{500, ClassServerError}, {404, ClassClientError}, {403, ClassForbidden}, {400, ClassClientError}} {
			t.Run(fmt.Sprintf("%s/endless %d", engine, tt.status), func(t *testing.T) {
				var sent atomic.Int64
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(tt.status)
					chunk := []byte(`{"errors":["` + strings.Repeat("x", 32<<10))
					for sent.Load() < 1<<30 { // 1 GiB at most, if the client kept reading
						n, err := w.Write(chunk)
						sent.Add(int64(n))
						if err != nil {
							return
						}
					}
				}))
				defer srv.Close()
				s := engineStore(t, engine, srv.URL, 30*time.Second)
				_, err := s.Lookup(context.Background(), id)
				checkTransient(t, err, tt.class, tt.status, fakeToken)
				if !errors.Is(err, errErrorBodyTooLarge) {
					t.Errorf("error %q does not say the error body was too large", err)
				}
				srv.CloseClientConnections()
				if n := sent.Load(); n > 64<<20 {
					t.Errorf("the server sent %d bytes before the client gave up", n)
				}
			})
		}
	}
}
