package main

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/internal/vaulttest"
)

// The matrix's keygate settings and timing. A fault lasts past found-ttl,
// so cached keys must be served stale; every fault ends well inside the
// stale window.
const (
	faultFoundTTL      = time.Second
	faultStaleTTL      = 10 * time.Second
	faultLookupTimeout = 150 * time.Millisecond
	faultFor           = faultFoundTTL + 500*time.Millisecond
	beforeFault        = 300 * time.Millisecond
	afterRecovery      = 300 * time.Millisecond
	slowLatency        = 500 * time.Millisecond // per request, past --lookup-timeout
	// recoveryBound: after the fault is removed, the uncached key must be
	// allowed within one refresh (found-ttl); a miss reads Vault at once.
	recoveryBound = faultFoundTTL
	// unreadBound: a revocation keygate has not read must apply within
	// one stale retry (keygate re-tries the store for an entry it serves
	// stale once a second) plus 1 s for a loaded 2-core machine under
	// -race (make test runs two packages at a time).
	unreadBound = time.Second + time.Second
	// maxCheckLatency bounds every Check under every fault: a lookup gives
	// up at --lookup-timeout; the rest is slack for -race.
	maxCheckLatency = time.Second
	// goroutineSlack is what keygate may hold more once things settle:
	// up to 3 idle pooled connections to Vault (vault/api keeps
	// GOMAXPROCS+1), 2 goroutines each in keygate and 2 in the proxy.
	goroutineSlack = 12
)

// faultRow is one fault: inject puts it in place, remove takes it away
// (nil: nothing can, as with a static token).
type faultRow struct {
	name   string
	static bool // keygate uses VAULT_TOKEN (cannot re-login) instead of a token file
	junk   bool // keygate's VAULT_ADDR is the junk server instead of the proxy
	inject func(t *testing.T, m *matrix)
	remove func(t *testing.T, m *matrix)
}

func setProxy(mode proxyMode) func(*testing.T, *matrix) {
	return func(_ *testing.T, m *matrix) { m.proxy.set(mode) }
}

func revokeToken(t *testing.T, m *matrix) { m.revokeToken(t) }

// faultRows: the proxy stays in the path for every row but the junk one.
// With Vault killed it cannot dial Vault and resets keygate's connection,
// so keygate sees resets and EOFs rather than ECONNREFUSED (both are
// "unreachable"; vault.TestLookupConnectionRefused covers refusal). Dev
// mode loses its data on restart: the row restores keygate's policy, its
// token (same id) and the row's records while the proxy still resets.
func faultRows() []faultRow {
	return []faultRow{
		{name: "Vault killed, then restarted", inject: func(t *testing.T, m *matrix) {
			m.state = m.snapshot(t, m.keys)
			m.v.Kill()
		}, remove: func(t *testing.T, m *matrix) {
			m.proxy.set(proxyReset) // keygate must not see the restarted Vault before its data is back
			m.v.Restart(t)
			m.closeIdle()
			m.restore(t, m.state)
			m.proxy.set(proxyPass)
		}},
		{name: "sealed", inject: func(t *testing.T, m *matrix) { m.v.Seal(t) },
			remove: func(t *testing.T, m *matrix) { m.v.Unseal(t) }},
		{name: "slow (proxy: +500 ms a request)", inject: setProxy(proxySlow), remove: setProxy(proxyPass)},
		{name: "stalled (proxy: accepts, never answers)", inject: setProxy(proxyStall), remove: setProxy(proxyPass)},
		{name: "connections reset (proxy)", inject: setProxy(proxyReset), remove: setProxy(proxyPass)},
		{name: "token revoked, token file rewritten", inject: revokeToken, remove: func(t *testing.T, m *matrix) { m.useNewToken(t) }},
		{name: "token revoked, static VAULT_TOKEN", static: true, inject: revokeToken},
		{name: "rate-limited (quota: 429)", inject: func(t *testing.T, m *matrix) { m.limit(t) },
			remove: func(t *testing.T, m *matrix) { m.unlimit(t) }},
		{name: "junk and 5xx bodies (httptest)", junk: true,
			inject: func(_ *testing.T, m *matrix) { m.junk.on.Store(true) },
			remove: func(_ *testing.T, m *matrix) { m.junk.on.Store(false) }},
	}
}

// TestFaultMatrix runs `keygate serve` in-process against the real Vault
// through a TCP proxy and, for each fault, Checks a cached, an uncached, a
// revoked and an unread-revoked key continuously from before the fault
// until after recovery. See faultTimes.wrong and judge for what counts as
// a wrong decision. It prints the matrix as a markdown table.
func TestFaultMatrix(t *testing.T) {
	m := newMatrix(t)
	var results []rowResult
	for _, row := range faultRows() {
		t.Run(row.name, func(t *testing.T) { results = append(results, m.run(t, row)) })
	}
	t.Logf("fault matrix (found-ttl %s, stale-ttl %s, lookup-timeout %s, journal-poll 1s, fault %s):\n%s",
		faultFoundTTL, faultStaleTTL, faultLookupTimeout, faultFor, faultTable(results))
}

// matrix is what the rows share.
type matrix struct {
	*faultVault
	proxy *faultProxy
	junk  *junkServer
	ring  keyring
	keys  faultKeys  // the current row's
	state vaultState // taken before a kill, restored after the restart
}

type rowResult struct {
	name       string
	v          verdict
	goroutines [2]int
}

func newMatrix(t *testing.T) *matrix {
	fv := newFaultVault(t)
	m := &matrix{faultVault: fv, proxy: startFaultProxy(t, fv.v.Addr, slowLatency), junk: startJunk(t, fv.v.Addr)}
	// The CLI goes through the proxy too, so that its idle connections
	// can be closed before a row counts goroutines.
	fv.env = fv.env.with("VAULT_ADDR", m.proxy.addr())
	t.Cleanup(func() { m.heal(t) })
	return m
}

// heal leaves Vault running, unsealed and unlimited for the tests that
// follow, whatever a failed row left behind.
func (m *matrix) heal(t *testing.T) {
	v := vaulttest.Server(t) // restarts a killed Vault (empty)
	m.closeIdle()
	if st, err := m.admin.Sys().SealStatus(); err == nil && st.Sealed {
		v.Unseal(t)
	}
	m.admin.Logical().Delete("sys/quotas/rate-limit/" + quotaName)
}

// run is one row: fresh keys, token and server; warm the cache; Check
// continuously through the fault and its removal; judge.
func (m *matrix) run(t *testing.T, row faultRow) rowResult {
	m.keys = m.newKeys(t)
	env, args := m.serveConfig(t, row)
	m.proxy.closeConns() // the CLI's
	m.closeIdle()
	leaks := goleak.IgnoreCurrent()
	s := serve(t, env, m.ring.all, args...)
	m.warm(t, s)
	before := goroutines(-1)
	d := startDriver(t, s, m.keys)
	ft := m.fault(t, row, d)
	decisions := d.halt()
	after := goroutines(before + goroutineSlack)
	refused := strings.Count(s.logs.String(), "Vault refuses keygate's token")
	if want := map[bool]int{true: 1, false: 0}[row.static && row.name == "token revoked, static VAULT_TOKEN"]; refused != want {
		t.Errorf("%d \"Vault refuses keygate's token\" errors logged, want %d", refused, want)
	}
	s.stop(t, m.ring.all)
	m.proxy.closeConns()
	m.junk.closeConns()
	m.closeIdle()
	v := ft.judge(decisions)
	m.assert(t, row, v, [2]int{before, after})
	if err := goleak.Find(append(leakIgnores(), leaks)...); err != nil {
		t.Errorf("goroutines left after keygate stopped: %v", err)
	}
	if _, _, open := m.proxy.counts(); open != 0 {
		t.Errorf("%d proxy connections open after keygate stopped", open)
	}
	return rowResult{name: row.name, v: v, goroutines: [2]int{before, after}}
}

// newKeys creates the row's keys with the CLI and revokes the one that is to be read as revoked.
func (m *matrix) newKeys(t *testing.T) faultKeys {
	t.Helper()
	var keys faultKeys
	for k := range keys {
		keys[k] = m.ring.add(createKey(t, m.env, "--tenant", "acme"))
	}
	mustCLI(t, m.env, "keys", "revoke", keys[keyRevoked].ID)
	return keys
}

// serveConfig gives keygate a fresh token and says how it reaches Vault.
func (m *matrix) serveConfig(t *testing.T, row faultRow) (envMap, []string) {
	t.Helper()
	m.useNewToken(t)
	env := envMap{"VAULT_ADDR": m.proxy.addr(), "KEYGATE_VAULT_BASE_PATH": m.base}
	if row.junk {
		env["VAULT_ADDR"] = m.junk.srv.URL
	}
	// --max-record-age 0: the matrix is about stale-if-error past
	// found-ttl, and its unread revocation is written straight to Vault,
	// which a journal read within 3 polls would keep cached as fresh
	// (TestRecordsFreshWhileJournalRead covers that regime).
	args := []string{"--log-level", "info", "--audit-log", "off", "--usage-interval", "0", "--max-record-age", "0",
		"--found-ttl", faultFoundTTL.String(), "--stale-ttl", faultStaleTTL.String(),
		"--not-found-ttl", "500ms", "--lookup-timeout", faultLookupTimeout.String()}
	if row.static {
		env["VAULT_TOKEN"] = m.token
	} else {
		args = append(args, "--vault-token-file", m.tokenFile)
	}
	return env, args
}

// warm caches the cached and unread keys as allowed and the revoked key
// as revoked.
func (m *matrix) warm(t *testing.T, s *server) {
	t.Helper()
	for k, want := range map[keyClass]string{keyCached: "allowed", keyRevoked: "revoked_key", keyUnread: "allowed"} {
		if o := s.decide(t, m.keys[k].Key, checkFlags{}); o.reason != want {
			t.Fatalf("%s key before the fault: %v, want %s", k, o, want)
		}
	}
}

// fault revokes the unread key in Vault, injects the fault, holds it for
// faultFor, removes it and waits for recovery.
func (m *matrix) fault(t *testing.T, row faultRow, d *driver) faultTimes {
	t.Helper()
	time.Sleep(beforeFault)
	var ft faultTimes
	m.revokeDirect(t, m.keys[keyUnread].ID)
	ft.unreadRevoked = time.Now()
	ft.injectStart = time.Now()
	row.inject(t, m)
	ft.faultOn = time.Now()
	d.checkUncached()
	time.Sleep(faultFor)
	ft.removeStart = time.Now()
	if row.remove == nil {
		return ft
	}
	row.remove(t, m)
	ft.removedAt = time.Now()
	d.await(unreadBound+time.Second, func(ds []decision) bool {
		v := ft.judge(ds)
		return v.recovery >= 0 && v.unreadDenied >= 0
	})
	time.Sleep(afterRecovery)
	return ft
}

func (m *matrix) assert(t *testing.T, row faultRow, v verdict, g [2]int) {
	t.Helper()
	for _, w := range v.wrong {
		t.Errorf("wrong decision: %s", w)
	}
	if v.nWrong > len(v.wrong) {
		t.Errorf("... and %d more wrong decisions", v.nWrong-len(v.wrong))
	}
	if v.staleFor < faultFoundTTL {
		t.Errorf("cached key allowed only to +%s into the fault; want past found-ttl %s (served stale)", v.staleFor, faultFoundTTL)
	}
	if v.uncachedDuring == 0 || v.checks[keyRevoked] == 0 {
		t.Errorf("too few Checks: %v", v.checks)
	}
	if row.remove != nil && (v.recovery < 0 || v.recovery > recoveryBound) {
		t.Errorf("uncached key allowed %s after the fault was removed; want within %s", v.recovery, recoveryBound)
	}
	if row.remove != nil && (v.unreadDenied < 0 || v.unreadDenied > unreadBound) {
		t.Errorf("revocation keygate had not read applied %s after the fault was removed; want within %s", v.unreadDenied, unreadBound)
	}
	if v.maxLatency > maxCheckLatency {
		t.Errorf("slowest Check took %s; want under %s", v.maxLatency, maxCheckLatency)
	}
	if g[1] > g[0]+goroutineSlack {
		t.Errorf("goroutines %d before the fault, %d after recovery; want at most %d more", g[0], g[1], goroutineSlack)
	}
	t.Logf("%s: checks %v, slowest %s, goroutines %d → %d", row.name, v.checks, v.maxLatency.Round(time.Millisecond), g[0], g[1])
}

// goroutines waits up to 3 s for the count to fall to limit (limit < 0:
// samples for 300 ms) and returns the lowest count seen.
func goroutines(limit int) int {
	low := runtime.NumGoroutine()
	for i := 0; i < 60 && (limit < 0 && i < 6 || low > limit && limit >= 0); i++ {
		time.Sleep(50 * time.Millisecond)
		low = min(low, runtime.NumGoroutine())
	}
	return low
}

// leakIgnores: the test's own vault/api and probe clients keep idle
// connections to Vault (net/http persistConn loops), and a restarted
// Vault has a new process waiter. keygate's own connections all end at
// the proxy or the junk server, which are closed before the check (and
// the proxy's open count is asserted to be 0).
func leakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("github.com/keygate/keygate/internal/vaulttest.(*process).start.func1"),
	}
}
