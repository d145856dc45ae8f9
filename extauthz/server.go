package extauthz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/keygate/keygate/policy"
)

// Server answers Envoy's Check calls. Every outcome is a CheckResponse:
// denies carry an HTTP status and a reason code, and Check never returns a
// gRPC error, so Envoy's failure_mode_allow can never turn one into an allow.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	cfg      Config
	format   policy.Format
	hasher   atomic.Pointer[policy.Hasher]
	cache    *cache
	log      *slog.Logger
	plain    responder // for Check and the HTTP mode
	wire     responder // for the gRPC service (see wireServer)
	strip    *stripper
	shared   shared
	usage    *usage
	limits   *limiter
	callers  *callers                 // nil when UnknownKeyRate < 0
	tooLarge *authv3.AttributeContext // marks a CheckRequest over MaxRequestBytes (see codec)
	// OnDecision, if set, is called after every decision (metrics, audit).
	OnDecision func(Decision)
}

// Decision describes one Check outcome, without the key: what OnDecision
// receives for metrics and audit lines.
type Decision struct {
	KeyID   string // "" when the key was missing or malformed
	Tenant  string // "" unless the key's record was read
	Reason  policy.Reason
	Source  Source
	Latency time.Duration // from the start of Check to the decision

	// The request, as Envoy described it.
	RequestID, Method, Host, Path, SourceIP string
}

// NewServer validates cfg (start from DefaultConfig) and returns a Server
// reading records from store and verifying keys with hasher. hasher may be
// nil until the store's peppers are loaded (SetHasher); until then every
// key denies 503.
func NewServer(cfg Config, store Store, hasher *policy.Hasher, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	format, _ := policy.NewFormat(cfg.KeyPrefix) // checked by Validate
	s := &Server{cfg: cfg, format: format, log: log,
		strip: newStripper(&cfg), shared: newShared(), tooLarge: &authv3.AttributeContext{},
		usage: newUsage(cfg.TrackUsage, cfg.CacheSize)}
	var err error
	if s.plain, s.wire, err = newResponders(); err != nil {
		return nil, fmt.Errorf("extauthz: %w", err)
	}
	s.hasher.Store(hasher)
	c, err := newCache(&s.cfg, store, log, s.buildAllow)
	if err != nil {
		return nil, fmt.Errorf("extauthz: cache: %w", err)
	}
	s.cache = c
	s.callers = newCallers(&s.cfg)
	if s.limits, err = newLimiter(cfg.CacheSize); err != nil {
		return nil, fmt.Errorf("extauthz: rate limits: %w", err)
	}
	return s, nil
}

// Register adds the Authorization service to g, which must have been
// created with GRPCOptions: its codec decodes requests with the lean
// decoder (see lean.go), and
// responses sent carry their fixed parts pre-encoded (see wireServer).
func (s *Server) Register(g *grpc.Server) { g.RegisterService(&checkService, wireServer{s: s}) }

// Check decides one request: extract key → parse/checksum (or, for an
// imported key, hash to its id) → cache (one shared store read on a miss)
// → verify hash → note the use → Evaluate → rate limit and quota → global
// limits (the rate limit service, for keys that have them) → response.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.check(ctx, req, nil, &s.plain), nil
}

// wireServer is the Server as registered with gRPC: it answers with the
// wire responder, whose responses gRPC sends without encoding their fixed
// parts again (see responder).
type wireServer struct {
	authv3.UnimplementedAuthorizationServer
	s *Server
}

func (w wireServer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return w.s.check(ctx, req, nil, &w.s.wire), nil
}

func (w wireServer) checkLean(ctx context.Context, req *leanRequest) *authv3.CheckResponse {
	return w.s.check(ctx, req.full, req, &w.s.wire)
}

// check is Check, answering with r's responses. The request is lean (what
// the lean decoder read) or, when lean is nil or holds none, req.
func (s *Server) check(ctx context.Context, req *authv3.CheckRequest, lean *leanRequest, r *responder) (resp *authv3.CheckResponse) {
	var d Decision
	var in incoming
	var start time.Time
	var settle func(unknown bool, now time.Time) // set while an uncached id's store read holds a caller's token
	var ownID bool                               // d.KeyID is the cache's copy, not a substring of the raw key
	if s.OnDecision != nil {
		start = time.Now()
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in Check", "key_id", d.KeyID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			d.Reason, resp = policy.InternalError, r.deny(policy.InternalError)
		}
		s.charge(ctx, &in, d.Reason, settle)
		s.decided(ctx, &d, &in, start, ownID)
	}()

	in = s.readRequest(req, lean)
	if d.Reason = in.reason; d.Reason != policy.Allowed {
		return r.deny(d.Reason)
	}
	keyID, ok := s.identify(in.rawKey)
	if !ok {
		d.Reason = policy.MalformedKey
		return r.deny(d.Reason)
	}
	d.KeyID, in.keyID = keyID, keyID
	now := s.cfg.Now()
	if s.callers.blockedAt(ctx, &in, now) && !s.cache.known(keyID) {
		d.Reason = policy.CallerLimited
		return r.deny(d.Reason)
	}
	routeScopes, reason := s.routeScopes(&in)
	if d.Reason = reason; d.Reason != policy.Allowed {
		return r.deny(d.Reason)
	}
	e, source, reason := s.lookup(ctx, &in, now, &settle)
	if d.Source, d.Reason = source, reason; d.Reason != policy.Allowed {
		return r.deny(d.Reason)
	}
	d.KeyID, ownID = e.keyID, true // Decisions outlive the request (audit queue)
	if d.Reason = s.underscores(&in); d.Reason != policy.Allowed {
		return r.deny(d.Reason)
	}
	if d.Reason = s.verify(in.rawKey, e.pol.Digest()); d.Reason != policy.Allowed {
		return r.deny(d.Reason)
	}
	d.Tenant = e.pol.Tenant()
	s.usage.note(e, now)
	preq := in.policyRequest(now, routeScopes)
	if d.Reason = e.pol.Evaluate(&preq); d.Reason != policy.Allowed {
		return r.deny(d.Reason)
	}
	if d.Reason, resp = s.limit(e, now); resp != nil {
		return resp
	}
	if d.Reason, resp = s.globalLimit(ctx, e, r); resp != nil {
		return resp
	}
	return s.allow(e.allow, &in, r)
}

// readRequest is what check decides on: what the lean decoder read (lean,
// unless it gave up and the request was decoded fully), else readRequest
// of req; a request the codec found too large, in either form, is marked
// (see codec).
func (s *Server) readRequest(req *authv3.CheckRequest, lean *leanRequest) incoming {
	switch {
	case lean != nil && lean.full == nil && lean.tooLarge:
		return incoming{reason: policy.RequestTooLarge}
	case lean != nil && lean.full == nil:
		return lean.in // what the lean decoder read
	case req.GetAttributes() == s.tooLarge:
		return incoming{reason: policy.RequestTooLarge}
	}
	return readRequest(req, &s.cfg)
}

// underscores is InvalidHeader when a header name with "_" reads, to a CGI
// upstream, as one keygate reads or sets (see stripper.collides). It runs
// after the lookup, so that the key's own record headers count.
func (s *Server) underscores(in *incoming) policy.Reason {
	if in.underscored != nil && s.strip.collides(&s.cfg, in.underscored) {
		return policy.InvalidHeader
	}
	return policy.Allowed
}

// lookup finds in.keyID's cache entry, reading the store on a miss. A read
// of an id not cached at all holds one of the caller's unknown-key tokens
// (settle is set to release it), so that a caller cannot have more such
// reads in flight than its budget; with none to spare, it is CallerLimited.
func (s *Server) lookup(ctx context.Context, in *incoming, now time.Time, settle *func(bool, time.Time)) (*entry, Source, policy.Reason) {
	e, source, reason, read := s.cache.peekAt(in.keyID, now)
	if !read {
		return e, source, reason
	}
	if e == nil && s.callers != nil {
		var ok bool
		if *settle, ok = s.callers.reserve(ctx, in, now); !ok {
			return nil, SourceNone, policy.CallerLimited
		}
	}
	return s.cache.fetch(ctx, in.keyID)
}

// charge settles the caller's unknown-key budget once the reason is known:
// every unknown_key costs one token, held since before a store read or
// spent now; a held token is released whole for any other answer.
func (s *Server) charge(ctx context.Context, in *incoming, reason policy.Reason, settle func(bool, time.Time)) {
	switch {
	case settle != nil:
		settle(reason == policy.UnknownKey, s.cfg.Now())
	case reason == policy.UnknownKey:
		s.callers.spend(ctx, in, s.cfg.Now())
	}
}

// identify returns the key's id: parsed from a keygate key (checksum
// checked), or, with Config.ImportedKeys, derived from the SHA-256 of a
// credential that could be an imported key. A credential with keygate's
// prefix is never treated as imported: a mistyped key stays malformed.
func (s *Server) identify(rawKey string) (keyID string, ok bool) {
	if keyID, err := s.format.Parse(rawKey); err == nil {
		return keyID, true
	}
	if !s.cfg.ImportedKeys || s.format.HasPrefix(rawKey) {
		return "", false
	}
	keyID, err := policy.ImportedKeyID(rawKey)
	return keyID, err == nil
}

// verify compares the key's hash with the record's in constant time. A
// mismatch reads as an unknown key: it must not reveal that the id exists.
func (s *Server) verify(rawKey string, digest policy.Digest) policy.Reason {
	h := s.hasher.Load()
	if h == nil {
		return policy.StoreUnavailable
	}
	ok, err := h.Verify(rawKey, digest)
	switch {
	case errors.Is(err, policy.ErrUnknownPepper):
		// A pepper newer than this server's: it is loaded within
		// --pepper-refresh, so this is temporary, not a bad record.
		return policy.StoreUnavailable
	case err != nil:
		return policy.InvalidRecord
	case !ok:
		return policy.UnknownKey
	}
	return policy.Allowed
}

// routeScopes applies the routes file, if any. Its rules match canonical
// paths only, so a non-canonical path is refused rather than guessed at.
func (s *Server) routeScopes(in *incoming) ([]string, policy.Reason) {
	if s.cfg.Routes == nil {
		return nil, policy.Allowed
	}
	path := pathOnly(in.path)
	if !policy.CanonicalPath(path) {
		return nil, policy.NonCanonicalPath
	}
	return s.cfg.Routes.Match(in.host, in.method, path)
}

func (s *Server) decided(ctx context.Context, d *Decision, in *incoming, start time.Time, ownID bool) {
	if s.OnDecision != nil {
		if !ownID {
			d.KeyID = strings.Clone(d.KeyID) // never retain the raw key's memory
		}
		d.Latency = time.Since(start)
		// Copies: the lean decoder's strings share the request's bytes,
		// raw key included, and decisions outlive the request.
		reqID := in.requestID
		if reqID == ambiguous { // two different x-request-ids: none
			reqID = ""
		}
		kept := cloneAll([5]string{in.method, in.host, in.path, in.source, reqID})
		d.Method, d.Host, d.Path, d.SourceIP, d.RequestID = kept[0], kept[1], kept[2], kept[3], kept[4]
		s.OnDecision(*d)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "check", slog.String("key_id", d.KeyID),
			slog.String("reason", d.Reason.String()), slog.Int("status", d.Reason.HTTPStatus()))
	}
}

// cloneAll copies the strings into one new allocation and returns the
// copies, which share it: a decision keeps them together, so one
// allocation does what five strings.Clone calls did.
func cloneAll(ss [5]string) [5]string {
	var out [5]string
	n := 0
	for _, v := range ss {
		n += len(v)
	}
	if n == 0 {
		return out
	}
	b := make([]byte, 0, n)
	for _, v := range ss {
		b = append(b, v...)
	}
	all := unsafe.String(&b[0], n) // b is not written again
	for i, v := range ss {
		out[i], all = all[:len(v)], all[len(v):]
	}
	return out
}

// SetHasher replaces the hasher, e.g. after the store's peppers change.
func (s *Server) SetHasher(h *policy.Hasher) { s.hasher.Store(h) }

// Evict drops one key id from the cache (incident response, change feeds).
func (s *Server) Evict(keyID string) { s.cache.evict(keyID) }

// Sweep drops cache entries that can no longer be served without a store
// read, fresh or stale (see Config.FoundTTL, MaxRecordAge and StaleTTL), and
// returns how many records and unknown ids it dropped. Call it
// periodically; serve does, every minute.
func (s *Server) Sweep() (records, unknown int) { return s.cache.sweep(s.cfg.Now()) }

// PurgeUnknown forgets every id cached as unknown, e.g. after keys were
// imported: found records stay.
func (s *Server) PurgeUnknown() { s.cache.purgeMissing() }

// ExpireAll makes every cached record be re-read from the store on its next
// use, and forgets the ids cached as unknown, for when changes may have
// been missed (a change feed that started late or lost entries). Unlike
// Purge it keeps the records: their re-reads are not held to
// Config.StoreReadRate, and one whose re-read fails is still served stale
// within FoundTTL+StaleTTL of its last read. A read in flight does not
// cache its result.
func (s *Server) ExpireAll() { s.cache.expireAll() }

// Purge drops every cached record.
func (s *Server) Purge() { s.cache.purge() }
