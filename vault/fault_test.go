package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

const fakeToken = "hvs.SECRET-token-must-not-leak"

// checkTransient asserts err is an *Error of the given class and status
// that is neither not-found nor invalid-record and does not leak the token.
func checkTransient(t *testing.T, err error, class string, status int, token string) {
	t.Helper()
	var verr *Error
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T) is not a *vault.Error", err, err)
	}
	if errors.Is(err, policy.ErrKeyNotFound) || errors.Is(err, policy.ErrInvalidRecord) {
		t.Errorf("transient error %v is also ErrKeyNotFound/ErrInvalidRecord", err)
	}
	if verr.Class() != class || verr.Status != status {
		t.Errorf("error %q: class %q status %d, want %q %d", err, verr.Class(), verr.Status, class, status)
	}
	if status != 0 && !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", status)) {
		t.Errorf("error %q does not name HTTP %d", err, status)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error %q contains the Vault token", err)
	}
}

// TestLookupFaultsFake: faults a real Vault cannot easily produce, from an
// httptest server. Each must make exactly one request (no client retries).
func TestLookupFaultsFake(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		class  string
	}{
		{"sealed", 503, `{"errors":["Vault is sealed"]}`, ClassUnavailable},
		{"rate limited", 429, `{"errors":["request path \"secret/data/x\": rate limit quota exceeded"]}`, ClassRateLimited},
		{"500 junk", 500, "<html>upstream exploded</html>", ClassServerError},
		{"500 echoing the token", 500, `{"errors":["bad token ` + fakeToken + `"]}`, ClassServerError},
		{"502 empty", 502, "", ClassServerError},
		{"404 from a proxy", 404, "<html>not found</html>", ClassClientError},
		{"JSON 404 that is not Vault's", 404, `{}`, ClassClientError},
		{"API gateway 404", 404, `{"message":"no Route matched with those values"}`, ClassClientError},
		{"200 with empty data", 200, `{"data":{}}`, ClassBadResponse},
		{"200 with null data and no deletion metadata", 200, `{"data":{"data":null,"metadata":{"version":3}}}`, ClassBadResponse},
		{"400", 400, `{"errors":["invalid request"]}`, ClassClientError},
		{"200 garbage", 200, "garbage", ClassBadResponse},
		{"200 truncated JSON", 200, `{"data":{"data":{"hash":"sha256:`, ClassBadResponse},
		{"200 without data", 200, `{}`, ClassBadResponse},
		{"200 array", 200, `[1,2]`, ClassBadResponse},
		{"204", 204, "", ClassBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.Header.Get("X-Vault-Token") != fakeToken {
					t.Errorf("request without the token header")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			s := fakeStore(t, srv.URL, time.Second)
			id, _ := newRecord(t)
			rec, err := s.Lookup(context.Background(), id)
			if rec != nil {
				t.Errorf("Lookup returned a record")
			}
			checkTransient(t, err, tt.class, tt.status, fakeToken)
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests, want exactly 1 (no retries)", n)
			}
		})
	}
}

// TestLookupDeletedFake: the shapes a deleted or destroyed version's answer
// takes (Vault's 404; a 200 with null or no data, as from older servers or
// proxies) all read as not found, never as a record that does not parse.
func TestLookupDeletedFake(t *testing.T) {
	const deletion = `"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z"}`
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"404, null data", 404, `{"errors":[],"data":{"data":null,` + deletion + `}}`},
		{"200, null data", 200, `{"data":{"data":null,` + deletion + `}}`},
		{"200, no data", 200, `{"data":{` + deletion + `}}`},
		{"200, destroyed, no data", 200, `{"data":{"metadata":{"version":2,"destroyed":true}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			id, _ := newRecord(t)
			rec, err := fakeStore(t, srv.URL, time.Second).Lookup(context.Background(), id)
			if !errors.Is(err, policy.ErrKeyNotFound) || rec != nil {
				t.Errorf("Lookup = %v, %v; want nil, ErrKeyNotFound", rec, err)
			}
		})
	}
}

// TestLookupRedirectNotFollowed: a redirect vault/api does not follow (here
// one without a Location) is an *Error that keeps vault/api's reason, not
// the text of the redirect's body.
func TestLookupRedirectNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, `{"errors":["moved"]}`)
	}))
	defer srv.Close()
	id, _ := newRecord(t)
	_, err := fakeStore(t, srv.URL, time.Second).Lookup(context.Background(), id)
	checkTransient(t, err, ClassBadResponse, http.StatusFound, fakeToken)
	if !errors.Is(err, http.ErrNoLocation) {
		t.Errorf("Lookup = %v, want it to wrap %v", err, http.ErrNoLocation)
	}
}

func fakeStore(t *testing.T, addr string, timeout time.Duration) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.Token, cfg.Timeout = addr, fakeToken, timeout
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLookupResponseLimit: a Lookup reads at most maxBody bytes of Vault's
// answer, for either engine: an answer of exactly maxBody bytes is read
// whole; one byte more is too big to hold a record.
func TestLookupResponseLimit(t *testing.T) {
	id, rec := newRecord(t)
	recJSON, err := json.Marshal(rec)
	check(t, err)
	answers := map[string]string{
		EngineKV:     `{"data":{"data":` + string(recJSON) + `,"metadata":{"version":1}}}`,
		EnginePlugin: `{"data":{"record":` + string(recJSON) + `,"version":1}}`,
	}
	for _, engine := range []string{EngineKV, EnginePlugin} {
		for _, size := range []int{maxBody, maxBody + 1} {
			t.Run(fmt.Sprintf("%s %d bytes", engine, size), func(t *testing.T) {
				// Leading blanks pad the answer; its last byte is the
				// closing brace, so a cut answer does not parse.
				body := strings.Repeat(" ", size-len(answers[engine])) + answers[engine]
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, body)
				}))
				defer srv.Close()
				cfg := DefaultConfig()
				cfg.Addr, cfg.Token, cfg.Timeout, cfg.Engine = srv.URL, fakeToken, time.Second, engine
				s, err := New(cfg)
				check(t, err)
				got, err := s.Lookup(context.Background(), id)
				switch {
				case size <= maxBody && (err != nil || got == nil || got.Hash != rec.Hash):
					t.Errorf("Lookup = %v, %v; want the record", got, err)
				case size > maxBody && !errors.Is(err, policy.ErrInvalidRecord):
					t.Errorf("Lookup = %v, want ErrInvalidRecord", err)
				}
			})
		}
	}
}

// TestLookupSlow: Vault that sleeps 5 s. The lookup gives up at the
// client timeout or the caller's deadline, whichever is first.
func TestLookupSlow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	tests := []struct {
		name     string
		timeout  time.Duration
		ctx      func() (context.Context, context.CancelFunc)
		class    string
		deadline time.Duration // generous; the server answers after 5 s
	}{
		{"client timeout", 200 * time.Millisecond, background, ClassTimeout, 3 * time.Second},
		{"default timeout", DefaultConfig().Timeout, background, ClassTimeout, 4 * time.Second},
		{"context deadline", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, ClassTimeout, 3 * time.Second},
		{"context canceled", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, ClassCanceled, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeStore(t, srv.URL, tt.timeout)
			ctx, cancel := tt.ctx()
			defer cancel()
			id, _ := newRecord(t)
			start := time.Now()
			_, err := s.Lookup(ctx, id)
			checkTransient(t, err, tt.class, 0, fakeToken)
			if elapsed := time.Since(start); elapsed > tt.deadline {
				t.Errorf("Lookup took %v", elapsed)
			}
		})
	}
}

func background() (context.Context, context.CancelFunc) { return context.Background(), func() {} }

func TestLookupConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	id, _ := newRecord(t)
	_, err = fakeStore(t, addr, time.Second).Lookup(context.Background(), id)
	checkTransient(t, err, ClassUnreachable, 0, fakeToken)
}

// TestInvalidIDNoRequest: a bad id is rejected before any request and is
// not echoed (it may be a mistyped raw key).
func TestInvalidIDNoRequest(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	s := fakeStore(t, srv.URL, time.Second)
	rawKey, _, _ := format.Generate()
	_, rec := newRecord(t)
	ctx := context.Background()
	for _, id := range []string{"", "short", rawKey, "../../sys/seal", "AAAAAAAAAAA/", "AAAAAAAAAAA\n", "AAAAAAAAAAAÄ"} {
		_, lookupErr := s.Lookup(ctx, id)
		if !errors.Is(lookupErr, policy.ErrKeyNotFound) || !errors.Is(lookupErr, ErrInvalidID) {
			t.Errorf("Lookup(%q) = %v, want ErrKeyNotFound and ErrInvalidID", id, lookupErr)
		}
		_, _, getErr := s.Get(ctx, id)
		errs := []error{lookupErr, getErr, s.Create(ctx, id, rec), s.Update(ctx, id, rec, 1)}
		for i, err := range errs {
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("op %d on %q = %v, want ErrInvalidID", i, id, err)
			}
			if err != nil && id != "" && strings.Contains(err.Error(), id) {
				t.Errorf("error %q echoes the invalid id", err)
			}
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached Vault", n)
	}
}

// TestLookupFaultsReal: faults the real dev server produces.
func TestLookupFaultsReal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	check(t, f.store.Create(ctx, id, rec))

	t.Run("bad token", func(t *testing.T) {
		s, err := New(testConfig(f.vault.Addr, fakeToken, f.base))
		check(t, err)
		_, err = s.Lookup(ctx, id)
		checkTransient(t, err, ClassForbidden, 403, fakeToken)
	})
	t.Run("no such mount", func(t *testing.T) {
		cfg := testConfig(f.vault.Addr, f.vault.Token, f.base)
		cfg.Mount = "nosuch"
		s, err := New(cfg)
		check(t, err)
		_, err = s.Lookup(ctx, id)
		checkTransient(t, err, ClassClientError, 404, f.vault.Token)
		_, err = s.Peppers(ctx)
		checkTransient(t, err, ClassClientError, 404, f.vault.Token)
		ids, err := s.List(ctx)
		checkTransient(t, err, ClassClientError, 404, f.vault.Token)
		if ids != nil {
			t.Errorf("List on a missing mount = %v", ids)
		}
	})
	t.Run("sealed", func(t *testing.T) {
		f.vault.Seal(t)
		defer f.vault.Unseal(t)
		_, err := f.store.Lookup(ctx, id)
		checkTransient(t, err, ClassUnavailable, 503, f.vault.Token)
		checkTransient(t, f.store.Create(ctx, id, rec), ClassUnavailable, 503, f.vault.Token)
	})
	if _, err := f.store.Lookup(ctx, id); err != nil {
		t.Errorf("Lookup after unseal: %v", err)
	}
}

// TestLookupVaultKilled: Vault stopped, then back on the same address.
func TestLookupVaultKilled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, rec := newRecord(t)
	check(t, f.store.Create(ctx, id, rec))
	addr := f.vault.Addr
	f.vault.Kill()
	_, err := f.store.Lookup(ctx, id)
	checkTransient(t, err, ClassUnreachable, 0, f.vault.Token)
	f.vault.Restart(t)
	if f.vault.Addr != addr {
		t.Fatalf("restarted on %s, want %s", f.vault.Addr, addr)
	}
	// Same address and token, so the Store works again, but the dev
	// server lost its data.
	if _, err := f.store.Lookup(ctx, id); !errors.Is(err, policy.ErrKeyNotFound) {
		t.Errorf("Lookup after restart = %v, want ErrKeyNotFound", err)
	}
	check(t, f.store.Create(ctx, id, rec))
}
