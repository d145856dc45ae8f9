package policy

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/fuzzcorpus"
	"github.com/keygate/keygate/internal/refpolicy"
)

// The decision fuzzers' properties compare exactly: every decision must be
// the one internal/refpolicy (a plain second reading of README's rules)
// reaches, not merely look plausible. Their seeds reach allows as well as
// denies, and TestFuzzCorpusReachesAllow keeps it so (see
// scripts/fuzz-seed.sh).

// checkOracle fails t unless got is refpolicy's decision for rec and req.
func checkOracle(t *testing.T, rec *Record, req *Request, got Reason) {
	t.Helper()
	want := refpolicy.Decide(refRecord(rec), refpolicy.Request{
		Now: req.Now, RequiredScopes: req.RequiredScopes, ScopeList: req.ScopeList, SourceIP: req.SourceIP,
		Host: req.Host, Origin: req.Origin, Referer: req.Referer,
	})
	if want != refpolicy.Unspecified && got.String() != want {
		t.Fatalf("decision %v, README says %s\nrecord: hosts %q, cidrs %q, referrers %q, scopes %q, %q–%q, %s\nrequest: %+v",
			got, want, rec.AllowedHosts, rec.AllowedCIDRs, rec.AllowedReferrers, rec.Scopes, rec.NotBefore, rec.ExpiresAt, rec.Status, *req)
	}
}

func refRecord(rec *Record) refpolicy.Record {
	return refpolicy.Record{
		Active: rec.Status == StatusActive, NotBefore: rec.NotBefore, ExpiresAt: rec.ExpiresAt,
		Scopes: rec.Scopes, Hosts: rec.AllowedHosts, CIDRs: rec.AllowedCIDRs, Refs: rec.AllowedReferrers,
	}
}

// exampleRequests are the requests FuzzParseRecord evaluates each record
// with. The first is allowed by fullRecordJSON.
func exampleRequests() []Request {
	return []Request{
		{Now: testNow, Host: "api.example.com", SourceIP: mustAddr("10.1.2.3"), Origin: "https://app.example.com", ScopeList: "orders:read"},
		{Now: testNow},
		{Now: testNow, Host: "API.Example.NET:8443", SourceIP: mustAddr("::ffff:10.0.0.1"), Origin: "null",
			Referer: "https://a.b.example.org:8443/x?y", ScopeList: "orders:read\torders:write"},
		{Now: testNow, Host: "[2001:DB8::1]:443", SourceIP: mustAddr("2001:db8::7"), Origin: "https://[::1]"},
		{Now: testNow, Host: "192.0.2.1", SourceIP: mustAddr("192.0.2.7"), Referer: "http://x.example.com:80/"},
		{Now: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Host: "x.api.example.com", SourceIP: mustAddr("10.0.0.1"),
			Origin: "https://APP.example.com:443", ScopeList: "reports/*"},
	}
}

// evaluateSeed is one FuzzEvaluate input: the offset is in seconds after
// not_before.
type evaluateSeed struct {
	host, origin, referer, scopeList, ip string
	offset                               int64
}

// evaluateSeeds are FuzzEvaluate's seeds; the first four are allowed.
var evaluateSeeds = []evaluateSeed{
	{"api.example.com:443", "https://x.example.org", "", "orders:read", "10.1.2.3", 0},
	{"API.EXAMPLE.COM", "null", "https://a.example.org/x", "orders:read orders:write", "::ffff:10.0.0.1", 3600},
	{"a.b.example.net:8443", "", "https://app.example.com:443/", "", "2001:db8::1", 86400},
	{"[2001:db8::1]:443", "http://[::1]:8080", "", "orders:write", "10.0.0.1", 7},
	{"sub.example.net", "", "https://app.example.com:443/", "\torders:write\t", "2001:db8::1", -1},
	{"example.net", "http://app.example.com", "", "admin", "fe80::1%eth0", 1 << 40},
	{"[2001:db8::1]", "https://user@app.example.com", "%zz", "", "", 0},
	{"", "", "", "", "1.2.3.4:abc", 0},
}

func evaluateSeedList() [][]any {
	var out [][]any
	for _, s := range evaluateSeeds {
		out = append(out, []any{s.host, s.origin, s.referer, s.scopeList, s.ip, s.offset})
	}
	return out
}

// evaluateWindow bounds FuzzEvaluate's clock to ±45 days around
// not_before, so that most offsets land near the key's 30-day lifetime.
const evaluateWindow = 45 * 24 * 3600

// fuzzRecord is everything, plus IP literal hosts and referrers with ports:
// what FuzzEvaluate decides on.
func fuzzRecord(r *Record) {
	everything(r)
	r.AllowedHosts = append(r.AllowedHosts, "2001:db8::1", "192.0.2.1")
	r.AllowedReferrers = append(r.AllowedReferrers, "http://[::1]:8080", "https://app.example.com:8443")
}

func FuzzEvaluate(f *testing.F) {
	for _, s := range evaluateSeeds {
		f.Add(s.host, s.origin, s.referer, s.scopeList, s.ip, s.offset)
	}
	ev := newEvaluateFuzz(f)
	f.Fuzz(func(t *testing.T, host, origin, referer, scopeList, ip string, offset int64) {
		ev.decide(t, host, origin, referer, scopeList, ip, offset)
	})
}

type evaluateFuzz struct{ rec, unvalidated *Record }

func newEvaluateFuzz(t testing.TB) *evaluateFuzz {
	rec := mustRecord(t, fuzzRecord)
	unvalidated := *rec
	unvalidated.c = nil
	return &evaluateFuzz{rec: rec, unvalidated: &unvalidated}
}

func (ev *evaluateFuzz) classify(t *testing.T, v []any) string {
	return ev.decide(t, fuzzcorpus.Arg[string](t, v, 0), fuzzcorpus.Arg[string](t, v, 1), fuzzcorpus.Arg[string](t, v, 2),
		fuzzcorpus.Arg[string](t, v, 3), fuzzcorpus.Arg[string](t, v, 4), fuzzcorpus.Arg[int64](t, v, 5))
}

// decide checks FuzzEvaluate's properties; its class is the reason code.
func (ev *evaluateFuzz) decide(t *testing.T, host, origin, referer, scopeList, ip string, offset int64) string {
	src, _ := netip.ParseAddr(ip)
	req := &Request{
		Now:       notBeforeTime.Add(time.Duration(offset%evaluateWindow) * time.Second),
		ScopeList: scopeList, SourceIP: src, Host: host, Origin: origin, Referer: referer,
	}
	got := evaluate(ev.rec, req)
	if again := evaluate(ev.rec, req); again != got {
		t.Fatalf("Evaluate not deterministic: %v then %v", got, again)
	}
	if r := evaluate(ev.unvalidated, req); r != InvalidRecord {
		t.Fatalf("unvalidated record: %v", r)
	}
	if got.HTTPStatus() == 200 != (got == Allowed) {
		t.Fatalf("reason %v has status %d", got, got.HTTPStatus())
	}
	checkOracle(t, ev.rec, req, got)
	return got.String()
}

// routeSeeds are routes files, and requestSeeds the requests FuzzParseRoutes
// pairs with each: with routesJSON, GET /orders/1 and GET /metrics on an
// internal host are allowed for routeGrants.
var (
	routeSeeds = []string{
		routesJSON,
		`{"routes": []}`,
		`{"routes": [{"path_prefix": "/"}]}`,
		`{"routes": [{"host": "*.example.com", "method": "GET", "path_prefix": "/a/", "scopes": ["x"]}]}`,
		`{"routes": [{"host": "API.example.com", "method": "get", "path_prefix": "a//b", "scopes": [""]}]}`,
		`{"routes": [{"path": "/"}]}`,
		`{"routes": {}}`,
		`{"routes": []} x`,
		``, `null`,
		`{"routes": [{"host": "[::1]", "path_prefix": "/a"}, {"host": "::1", "path_prefix": "/a;b", "scopes": ["orders:read"]}]}`,
	}
	requestSeeds = [][3]string{
		{"api.example.com", "GET", "/orders/1"},
		{"admin.example.com:8443", "POST", "/orders"},
		{"a.internal.example.com", "GET", "/metrics"},
		{"[::1]:80", "HEAD", "/a;b"},
		{"[::1]:80", "", ""},
		{"", "DELETE", "/ordersx"},
	}
	// routeGrants are the scopes of the key FuzzParseRoutes decides for.
	routeGrants = []string{"orders:read", "metrics", "x"}
)

func routesSeedList() [][]any {
	var out [][]any
	for _, s := range routeSeeds {
		for _, req := range requestSeeds {
			out = append(out, []any{[]byte(s), req[0], req[1], req[2]})
		}
	}
	return out
}

func FuzzParseRoutes(f *testing.F) {
	for _, s := range routeSeeds {
		for _, req := range requestSeeds {
			f.Add([]byte(s), req[0], req[1], req[2])
		}
	}
	rec := mustRecord(f, scopes(routeGrants...))
	f.Fuzz(func(t *testing.T, data []byte, host, method, p string) { routesDecision(t, rec, data, host, method, p) })
}

// routesDecision checks FuzzParseRoutes's properties: the rule Match
// chooses, and why, are refpolicy's for the loaded table; the decision for
// a key granting routeGrants is refpolicy's. Its class is that decision
// (invalid_key_record when the file does not load: no decision).
func routesDecision(t *testing.T, rec *Record, data []byte, host, method, p string) string {
	routes, err := ParseRoutes(data)
	if err != nil {
		if routes != nil {
			t.Fatal("ParseRoutes returned routes with an error")
		}
		return "unloaded"
	}
	var ref []refpolicy.Rule
	for i, rule := range routes.Rules {
		if !CanonicalPath(rule.PathPrefix) {
			t.Fatalf("rule %d: accepted path_prefix %q", i, rule.PathPrefix)
		}
		ref = append(ref, refpolicy.Rule{Host: rule.Host, Method: rule.Method, PathPrefix: rule.PathPrefix, Scopes: rule.Scopes})
	}
	chosen, reason := routes.rule(host, method, p)
	if c2, r2 := routes.rule(host, method, p); c2 != chosen || r2 != reason {
		t.Fatal("Match not deterministic")
	}
	wantRule, wantReason := refpolicy.Route(ref, host, method, p)
	if chosen != wantRule || reason.String() != wantReason {
		t.Fatalf("%s %q on %q: rule %d, %v; README says rule %d, %s\nrules: %+v", method, p, host, chosen, reason, wantRule, wantReason, ref)
	}
	scopes, r := routes.Match(host, method, p)
	if r != reason || (chosen < 0 && scopes != nil) || (chosen >= 0 && !slices.Equal(scopes, routes.Rules[chosen].Scopes)) {
		t.Fatalf("Match = %q, %v; rule = %d, %v", scopes, r, chosen, reason)
	}
	if reason != Allowed {
		return reason.String()
	}
	req := &Request{Now: testNow, RequiredScopes: scopes}
	got := evaluate(rec, req)
	checkOracle(t, rec, req, got)
	return got.String()
}

// decisionTargets are the classifiers of this package's decision fuzzers:
// what TestFuzzClassify (scripts/fuzz-seed.sh) and TestFuzzCorpusReachesAllow
// run.
func decisionTargets(t testing.TB) map[string]struct {
	seeds    [][]any
	allow    string
	classify fuzzcorpus.Classifier
} {
	type target = struct {
		seeds    [][]any
		allow    string
		classify fuzzcorpus.Classifier
	}
	ev := newEvaluateFuzz(t)
	kp := newKeyParsers(t)
	kg := mustFormat(t, DefaultPrefix)
	routeRec := mustRecord(t, scopes(routeGrants...))
	strings1 := func(list []string) [][]any {
		var out [][]any
		for _, s := range list {
			out = append(out, []any{s})
		}
		return out
	}
	bytes1 := func(list []string) [][]any {
		var out [][]any
		for _, s := range list {
			out = append(out, []any{[]byte(s)})
		}
		return out
	}
	return map[string]target{
		"FuzzEvaluate": {evaluateSeedList(), Allowed.String(), ev.classify},
		"FuzzParseRoutes": {routesSeedList(), Allowed.String(), func(t *testing.T, v []any) string {
			return routesDecision(t, routeRec, fuzzcorpus.Arg[[]byte](t, v, 0), fuzzcorpus.Arg[string](t, v, 1),
				fuzzcorpus.Arg[string](t, v, 2), fuzzcorpus.Arg[string](t, v, 3))
		}},
		"FuzzParseRecord": {bytes1(recordSeeds), Allowed.String(), func(t *testing.T, v []any) string {
			return recordDecision(t, kg, fuzzcorpus.Arg[[]byte](t, v, 0))
		}},
		"FuzzParseKey": {strings1(keySeeds), "accepted", func(t *testing.T, v []any) string {
			return kp.decide(t, fuzzcorpus.Arg[string](t, v, 0))
		}},
		"FuzzCanonicalPath": {strings1(canonicalPathSeeds), "canonical", func(t *testing.T, v []any) string {
			return canonicalPathDecision(t, fuzzcorpus.Arg[string](t, v, 0))
		}},
		"FuzzParseHost": {strings1(hostSeeds), "valid", func(t *testing.T, v []any) string {
			return hostDecision(t, fuzzcorpus.Arg[string](t, v, 0))
		}},
	}
}

// TestFuzzCorpusReachesAllow replays each decision fuzzer's seeds and
// committed corpus: each must reach an allow and a deny.
func TestFuzzCorpusReachesAllow(t *testing.T) {
	for name, target := range decisionTargets(t) {
		t.Run(name, func(t *testing.T) { fuzzcorpus.Replay(t, name, target.seeds, target.allow, target.classify) })
	}
}

// TestFuzzClassify serves scripts/fuzz-seed.sh (see package fuzzcorpus).
func TestFuzzClassify(t *testing.T) {
	classifiers := map[string]fuzzcorpus.Classifier{}
	for name, target := range decisionTargets(t) {
		classifiers[name] = target.classify
	}
	fuzzcorpus.Classify(t, classifiers)
}
