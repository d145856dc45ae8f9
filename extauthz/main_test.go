package extauthz

import (
	"context"
	"flag"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current responses")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Fixed test-only keys, built by hand so goldens are stable. They have valid
// checksums; wrongSecretKey shares testKey's id but not its secret.
const (
	testID      = "GoldenKey001"
	testSecret  = "Secret0123456789abcdefghijKLMNOP"
	otherID     = "OtherKey0002"
	otherSecret = "AnotherSecret9876543210zyxwvutsQ"
)

var (
	testKey        = makeKey("kg", testID, testSecret)
	otherKey       = makeKey("kg", otherID, otherSecret)
	wrongSecretKey = makeKey("kg", testID, "WrongSecret0123456789abcdefghijk")

	testHasher    = mustHasher()
	discardLogger = slog.New(slog.DiscardHandler)
	epoch         = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// makeKey builds a key the way policy.Format.Generate does: CRC32 (IEEE) of
// prefix_id+secret, as six base62 digits. It panics if policy disagrees.
func makeKey(prefix, id, secret string) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	signed := prefix + "_" + id + secret
	v := uint64(crc32.ChecksumIEEE([]byte(signed)))
	var sum [6]byte
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = base62[v%62]
		v /= 62
	}
	key := signed + string(sum[:])
	f, err := policy.NewFormat(prefix)
	if err != nil {
		panic(err)
	}
	if got, err := f.Parse(key); err != nil || got != id {
		panic("makeKey: policy rejects hand-built key: " + err.Error())
	}
	return key
}

// secretOf returns the secret part of a kg_ key (what must never leak).
func secretOf(rawKey string) string {
	const start = len("kg_") + policy.IDLen
	if len(rawKey) < start+policy.SecretLen {
		return rawKey
	}
	return rawKey[start : start+policy.SecretLen]
}

func mustHasher() *policy.Hasher {
	h, err := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	if err != nil {
		panic(err)
	}
	return h
}

// fakeClock is an injectable clock; panicNext makes the next Now panic once.
type fakeClock struct {
	ns        atomic.Int64
	panicNext atomic.Bool
}

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(epoch.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time {
	if c.panicNext.CompareAndSwap(true, false) {
		panic("test clock exploded")
	}
	return time.Unix(0, c.ns.Load()).UTC()
}

func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fakeStore is the consumer-side seam: records by id plus injectable faults.
type fakeStore struct {
	mu      sync.Mutex
	recs    map[string]*policy.Record
	idErr   map[string]error // per-id error (e.g. wrapping ErrInvalidRecord)
	err     error            // when set, every Lookup fails with it
	panicV  any              // when set, Lookup panics with it
	nilRec  bool             // when set, Lookup returns (nil, nil)
	delay   time.Duration    // when set, Lookup waits this long or until ctx is done
	block   chan struct{}    // when set, Lookup waits for it to close or ctx to be done
	entered chan string      // when set, Lookup sends the id on entry
	byID    map[string]int
	ctxErrs []error // ctx.Err() seen at the end of each Lookup

	reads atomic.Int64
}

func newFakeStore() *fakeStore {
	return &fakeStore{recs: map[string]*policy.Record{}, idErr: map[string]error{}, byID: map[string]int{}}
}

func (s *fakeStore) Lookup(ctx context.Context, keyID string) (*policy.Record, error) {
	s.reads.Add(1)
	s.mu.Lock()
	s.byID[keyID]++
	rec, ok := s.recs[keyID] // snapshot at entry, like a real read
	idErr, err, panicV, nilRec := s.idErr[keyID], s.err, s.panicV, s.nilRec
	delay, block, entered := s.delay, s.block, s.entered
	s.mu.Unlock()

	if entered != nil {
		entered <- keyID
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	s.mu.Lock()
	s.ctxErrs = append(s.ctxErrs, ctx.Err())
	s.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case panicV != nil:
		panic(panicV)
	case nilRec:
		return nil, nil
	case err != nil:
		return nil, err
	case idErr != nil:
		return nil, idErr
	case !ok:
		return nil, policy.ErrKeyNotFound
	}
	return rec, nil
}

func (s *fakeStore) set(f func(s *fakeStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeStore) readsFor(keyID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[keyID]
}

// newRecord returns a validated active record for rawKey, changed by mod.
func newRecord(t testing.TB, rawKey string, mod func(*policy.Record)) *policy.Record {
	t.Helper()
	rec := &policy.Record{
		Hash:    testHasher.Hash(rawKey).String(),
		Name:    "test key",
		Tenant:  "acme",
		Status:  policy.StatusActive,
		Scopes:  []string{"orders:read", "orders:write"},
		Headers: map[string]string{"x-plan": "gold"},
	}
	if mod != nil {
		mod(rec)
	}
	if err := rec.Validate(); err != nil {
		t.Fatalf("test record does not validate: %v", err)
	}
	return rec
}

// env is one Server with its fake store and clock; testKey is in the store.
type env struct {
	t     testing.TB
	srv   *Server
	store *fakeStore
	clock *fakeClock
	keys  []string // every raw key put in the store (for leak checks)

	mu        sync.Mutex
	decisions []Decision
}

func newEnv(t testing.TB, mods ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, store: newFakeStore(), clock: newFakeClock()}
	cfg := DefaultConfig()
	cfg.Now, cfg.StoreReadRate, cfg.UnknownKeyRate = e.clock.Now, -1, -1 // callers_test.go turns the caller limit on
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := NewServer(cfg, e.store, testHasher, discardLogger)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	srv.OnDecision = func(d Decision) {
		e.mu.Lock()
		e.decisions = append(e.decisions, d)
		e.mu.Unlock()
	}
	e.srv = srv
	e.put(testKey, nil)
	return e
}

// put stores a record for rawKey (replacing any), changed by mod.
func (e *env) put(rawKey string, mod func(*policy.Record)) *policy.Record {
	e.t.Helper()
	rec := newRecord(e.t, rawKey, mod)
	id := rawKey[len("kg_") : len("kg_")+policy.IDLen]
	e.store.set(func(s *fakeStore) { s.recs[id] = rec })
	e.keys = append(e.keys, rawKey)
	return rec
}

// newKey generates a key and stores its record.
func (e *env) newKey(mod func(*policy.Record)) (rawKey, keyID string) {
	e.t.Helper()
	f, err := policy.NewFormat("kg")
	if err != nil {
		e.t.Fatal(err)
	}
	rawKey, keyID, err = f.Generate()
	if err != nil {
		e.t.Fatal(err)
	}
	e.put(rawKey, mod)
	return rawKey, keyID
}

func (e *env) lastDecision() Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.decisions) == 0 {
		e.t.Fatal("no decision recorded")
	}
	return e.decisions[len(e.decisions)-1]
}

// check calls Check with a background context and checks the invariants
// every response must hold.
func (e *env) check(req *authv3.CheckRequest) *authv3.CheckResponse {
	e.t.Helper()
	return e.checkCtx(context.Background(), req)
}

func (e *env) checkCtx(ctx context.Context, req *authv3.CheckRequest) *authv3.CheckResponse {
	e.t.Helper()
	resp, err := e.srv.Check(ctx, req)
	if err != nil {
		e.t.Fatalf("Check returned an error (Envoy may fail open on it): %v", err)
	}
	if resp == nil {
		e.t.Fatal("Check returned a nil response")
	}
	checkInvariants(e.t, resp, e.keys...)
	return resp
}

// outcome is the reason code of a response: "allowed" or the deny's code.
func outcome(resp *authv3.CheckResponse) string {
	if resp.GetOkResponse() != nil && resp.GetStatus().GetCode() == int32(codes.OK) {
		return policy.Allowed.String()
	}
	return resp.GetStatus().GetMessage()
}

func reasonByCode(code string) (policy.Reason, bool) {
	for r := range policy.NumReasons {
		if policy.Reason(r).String() == code {
			return policy.Reason(r), true
		}
	}
	return 0, false
}

// checkInvariants asserts what holds for every response.
func checkInvariants(t testing.TB, resp *authv3.CheckResponse, rawKeys ...string) {
	t.Helper()
	checkResponse(t, resp, true, rawKeys...)
}

// checkResponse is checkInvariants; wire says whether the request could have
// arrived over gRPC (proto strings are valid UTF-8), in which case the
// response must be sendable too.
func checkResponse(t testing.TB, resp *authv3.CheckResponse, wire bool, rawKeys ...string) {
	t.Helper()
	switch r := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		if c := resp.GetStatus().GetCode(); c != int32(codes.OK) {
			t.Errorf("ok response with status code %d", c)
		}
		set := map[string]bool{}
		for _, h := range r.OkResponse.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("allow header %q: append_action %v, want OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey(), h.GetAppendAction())
			}
			set[strings.ToLower(h.GetHeader().GetKey())] = true
		}
		seen := map[string]bool{}
		for _, name := range r.OkResponse.GetHeadersToRemove() {
			if set[strings.ToLower(name)] {
				t.Errorf("header %q is both set and removed", name)
			}
			if seen[strings.ToLower(name)] {
				t.Errorf("header %q removed twice", name)
			}
			seen[strings.ToLower(name)] = true
		}
	case *authv3.CheckResponse_DeniedResponse:
		if c := resp.GetStatus().GetCode(); c == int32(codes.OK) {
			t.Errorf("deny %q with OK status code", resp.GetStatus().GetMessage())
		}
		status := int(r.DeniedResponse.GetStatus().GetCode())
		if status < 400 {
			t.Errorf("deny with HTTP status %d", status)
		}
		if reason, ok := reasonByCode(resp.GetStatus().GetMessage()); !ok {
			t.Errorf("deny status message %q is not a reason code", resp.GetStatus().GetMessage())
		} else if reason.HTTPStatus() != status {
			t.Errorf("deny %s: HTTP status %d, want %d", reason, status, reason.HTTPStatus())
		}
		var challenge bool
		for _, h := range r.DeniedResponse.GetHeaders() {
			name := strings.ToLower(h.GetHeader().GetKey())
			if strings.HasPrefix(name, "x-keygate-") {
				t.Errorf("deny carries identity header %q", name)
			}
			challenge = challenge || name == "www-authenticate"
		}
		if status == http.StatusUnauthorized && !challenge {
			t.Errorf("401 deny without www-authenticate")
		}
		if !strings.Contains(r.DeniedResponse.GetBody(), `"reason":"`+resp.GetStatus().GetMessage()+`"`) {
			t.Errorf("deny body %q lacks the reason code", r.DeniedResponse.GetBody())
		}
	default:
		t.Errorf("response has no http_response: %v", resp)
	}
	if _, err := proto.Marshal(resp); err != nil && wire {
		t.Errorf("response cannot be sent on the wire: gRPC fails the call, and with failure_mode_allow "+
			"Envoy passes the request unmodified (spoofed x-keygate-* headers and the key reach the upstream): %v", err)
	}
	text := resp.String()
	if js, err := protojson.Marshal(resp); err == nil {
		text = string(js)
	}
	for _, k := range slices.Concat(rawKeys, []string{testKey, otherKey, wrongSecretKey}) { // not append: rawKeys may be shared
		if strings.Contains(text, k) || strings.Contains(text, secretOf(k)) {
			t.Errorf("response contains a raw key or its secret")
		}
	}
}

// reqBuilder builds CheckRequests the way Envoy fills them.
type reqBuilder struct{ r *authv3.CheckRequest }

func newReq() *reqBuilder {
	return &reqBuilder{r: &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       "req-1",
			Method:   "GET",
			Path:     "/v1/orders",
			Host:     "api.example.com",
			Scheme:   "https",
			Protocol: "HTTP/1.1",
			Headers:  map[string]string{},
		}},
	}}}
}

func (b *reqBuilder) http() *authv3.AttributeContext_HttpRequest {
	return b.r.Attributes.Request.Http
}

// header sets a header in the headers map.
func (b *reqBuilder) header(name, value string) *reqBuilder {
	b.http().Headers[name] = value
	return b
}

// raw appends a header to header_map as raw_value bytes (encode_raw_headers).
func (b *reqBuilder) raw(name string, value []byte) *reqBuilder {
	h := b.http()
	if h.HeaderMap == nil {
		h.HeaderMap = &corev3.HeaderMap{}
	}
	h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: name, RawValue: value})
	return b
}

// mapValue appends a header to header_map as a string value.
func (b *reqBuilder) mapValue(name, value string) *reqBuilder {
	h := b.http()
	if h.HeaderMap == nil {
		h.HeaderMap = &corev3.HeaderMap{}
	}
	h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: name, Value: value})
	return b
}

func (b *reqBuilder) key(rawKey string) *reqBuilder { return b.header("x-api-key", rawKey) }

func (b *reqBuilder) path(p string) *reqBuilder   { b.http().Path = p; return b }
func (b *reqBuilder) host(h string) *reqBuilder   { b.http().Host = h; return b }
func (b *reqBuilder) method(m string) *reqBuilder { b.http().Method = m; return b }

func (b *reqBuilder) source(addr string) *reqBuilder {
	b.r.Attributes.Source.Address.GetSocketAddress().Address = addr
	return b
}

func (b *reqBuilder) scopes(list string) *reqBuilder {
	if b.r.Attributes.ContextExtensions == nil {
		b.r.Attributes.ContextExtensions = map[string]string{}
	}
	b.r.Attributes.ContextExtensions[ScopesExtension] = list
	return b
}

func (b *reqBuilder) build() *authv3.CheckRequest { return b.r }

// headerSet and removed read an allow response.
func headerSet(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}

func removed(resp *authv3.CheckResponse) map[string]bool {
	out := map[string]bool{}
	for _, name := range resp.GetOkResponse().GetHeadersToRemove() {
		out[name] = true
	}
	return out
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)

// doneSignal is a context that reports, once, when a caller starts waiting on
// Done: Check selects on ctx.Done only after it has joined the shared read.
type doneSignal struct {
	context.Context
	once    sync.Once
	waiting func()
}

func (c *doneSignal) Done() <-chan struct{} {
	c.once.Do(c.waiting)
	return c.Context.Done()
}
