package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestNoResponse: a request that got no answer keeps its cause, so the
// caller's cancellation is counted as canceled, not as Vault unreachable.
// Both engines, at an address that refuses connections.
func TestNoResponse(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		engine string
		addr   string
		ctx    context.Context
		class  string
	}{
		{"kv refused", EngineKV, closed, context.Background(), ClassUnreachable},
		{"kv canceled", EngineKV, closed, canceled, ClassCanceled},
		{"plugin refused", EnginePlugin, closed, context.Background(), ClassUnreachable},
		{"plugin canceled", EnginePlugin, closed, canceled, ClassCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := engineStore(t, tt.engine, tt.addr, 5*time.Second)
			id, _ := newRecord(t)
			_, err := s.Lookup(tt.ctx, id)
			checkTransient(t, err, tt.class, 0, fakeToken)
		})
	}
}

// TestBodyCut: an answer cut short (the connection closed before the
// Content-Length was read) is a transient *Error whose cause is the cut,
// on both engines and for error statuses too (vault/api reads those
// bodies itself). Vault does not do this; a proxy or a crash can.
func TestBodyCut(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	tests := []struct {
		name   string
		engine string
		status int
		class  string
	}{
		{"kv 200", EngineKV, 200, ClassBadResponse},
		{"kv 500", EngineKV, 500, ClassServerError},
		{"plugin 200", EnginePlugin, 200, ClassBadResponse},
		{"plugin 500", EnginePlugin, 500, ClassServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(1000))
				w.WriteHeader(tt.status)
				io.WriteString(w, `{"data":{"data":`)
			}))
			defer srv.Close()
			id, _ := newRecord(t)
			_, err := engineStore(t, tt.engine, srv.URL, 5*time.Second).Lookup(context.Background(), id)
			checkTransient(t, err, tt.class, tt.status, fakeToken)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %q does not wrap the cut (io.ErrUnexpectedEOF)", err)
			}
		})
	}
}

// TestBodyStalled: an answer whose body stops coming is given up at the
// Store's timeout and counted as a timeout, on both engines and for error
// statuses too: vault/api reads those bodies itself, and the deadline then
// surfaces as a read on a closed connection, not as the deadline.
func TestBodyStalled(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	for _, engine := range []string{EngineKV, EnginePlugin} {
		for _, status := range []int{200, 500} {
			t.Run(fmt.Sprintf("%s %d", engine, status), func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(1000))
					w.WriteHeader(status)
					io.WriteString(w, `{"data":{"data":`)
					w.(http.Flusher).Flush()
					select { // until the client gives up
					case <-r.Context().Done():
					case <-time.After(10 * time.Second):
					}
				}))
				defer srv.Close()
				s := engineStore(t, engine, srv.URL, 200*time.Millisecond)
				id, _ := newRecord(t)
				_, err := s.Lookup(context.Background(), id)
				checkTransient(t, err, ClassTimeout, status, fakeToken)
			})
		}
	}
}

// TestUnfollowedRedirect: a redirect vault/api cannot follow (no
// Location) is a transient *Error that says so, on both engines, rather
// than a complaint about the (empty) body.
func TestUnfollowedRedirect(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	for _, engine := range []string{EngineKV, EnginePlugin} {
		id, _ := newRecord(t)
		_, err := engineStore(t, engine, srv.URL, 5*time.Second).Lookup(context.Background(), id)
		checkTransient(t, err, ClassBadResponse, http.StatusTemporaryRedirect, fakeToken)
		if !strings.Contains(fmt.Sprint(err), "no Location header") {
			t.Errorf("%s: error %q does not say why the redirect was not followed", engine, err)
		}
	}
}

// engineStore is a Store of engine ("kv" or "plugin") at addr with
// fakeToken and a request timeout.
func engineStore(t *testing.T, engine, addr string, timeout time.Duration) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.Token, cfg.Timeout = addr, fakeToken, timeout
	if engine == EnginePlugin {
		cfg.Engine, cfg.Mount = EnginePlugin, "keygate"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
