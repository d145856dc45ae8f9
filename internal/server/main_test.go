package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/goleak"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.DiscardHandler)

// keyFile is a file store holding n active keys.
type keyFile struct {
	path string
	fs   *filestore.Store
	raw  []string // raw keys, ids alike
	ids  []string
}

func newKeyFile(t *testing.T, n int) *keyFile {
	t.Helper()
	ctx := context.Background()
	k := &keyFile{path: filepath.Join(t.TempDir(), "keys.yaml")}
	var err error
	if k.fs, err = filestore.OpenOrCreate(ctx, k.path, nil); err != nil {
		t.Fatal(err)
	}
	format, _ := policy.NewFormat(policy.DefaultPrefix)
	hasher, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	for range n {
		raw, id, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		rec := &policy.Record{Hash: hasher.Hash(raw).String(), Tenant: "t", Status: policy.StatusActive}
		if err := k.fs.Create(ctx, id, rec); err != nil {
			t.Fatal(err)
		}
		k.raw, k.ids = append(k.raw, raw), append(k.ids, id)
	}
	return k
}

func (k *keyFile) revoke(t *testing.T, i int) {
	t.Helper()
	ctx := context.Background()
	rec, v, err := k.fs.Get(ctx, k.ids[i])
	if err != nil {
		t.Fatal(err)
	}
	rec.Status = policy.StatusRevoked
	if err := k.fs.Update(ctx, k.ids[i], rec, v); err != nil {
		t.Fatal(err)
	}
}

// checkRequest is a request for api.example.com carrying rawKey.
func checkRequest(rawKey string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/", Host: "api.example.com", Scheme: "http",
			Headers: map[string]string{":method": "GET", ":path": "/", ":authority": "api.example.com", "x-api-key": rawKey},
		}},
	}}
}

// reason is a CheckResponse's decision: "allowed" or the deny reason.
func reason(resp *authv3.CheckResponse) string {
	if resp.GetStatus().GetCode() == 0 {
		return "allowed"
	}
	return resp.GetStatus().GetMessage()
}

// events is an ordered record of what happened: log messages and what
// the fakes saw, for asserting sequences without timing.
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.all...)
}

// index is where s first happened, or -1.
func (e *events) index(s string) int {
	for i, x := range e.list() {
		if x == s {
			return i
		}
	}
	return -1
}

func (e *events) has(s string) bool { return e.index(s) >= 0 }

// logger records each log message as an event "log:<msg>".
func (e *events) logger() *slog.Logger { return slog.New(eventHandler{e}) }

type eventHandler struct{ e *events }

func (h eventHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h eventHandler) Handle(_ context.Context, r slog.Record) error {
	h.e.add("log:" + r.Message)
	return nil
}
func (h eventHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h eventHandler) WithGroup(string) slog.Handler      { return h }

// eventually polls cond every 10ms for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuf is a Writer safe for concurrent use.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuf)(nil)
