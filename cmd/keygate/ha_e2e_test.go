package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keygate/keygate/internal/vaulttest"
)

// haKeys are the keys the load checks, grouped by what keygate may answer.
type haKeys struct {
	cached   []created // looked up before the load: always allowed (stale-if-error covers the election)
	uncached []created // first looked up under load: allowed, or 503 store_unavailable while Vault cannot answer
	revoked  created   // never allowed
	unknown  created   // in no store: 401 unknown_key or 503 store_unavailable, never allowed
}

// TestVaultHA kills the active node of a 3-node Vault cluster (integrated
// Raft storage, real binary) while four workers send Checks: no decision
// may be wrong, health must stay SERVING, cache misses must be allowed
// again once a new node is active, and the killed node must rejoin.
// keygate and the CLI talk to a standby, which forwards to whichever node
// is active. The figures (start-up, election, 503 window, recovery,
// rejoin) go to one log line.
func TestVaultHA(t *testing.T) {
	c := vaulttest.Cluster(t, 3)
	leader := c.Leader()
	if leader < 0 {
		t.Fatal("no active node")
	}
	via := (leader + 1) % c.Len() // a standby
	env := envMap{"VAULT_ADDR": c.Addr(via), "VAULT_TOKEN": c.Token, "KEYGATE_VAULT_BASE_PATH": "kg-ha"}
	var ring keyring
	keys := haCreateKeys(t, env, &ring)
	s := serve(t, env, ring.all, "--found-ttl", "1s", "--not-found-ttl", "200ms", "--stale-ttl", "1m",
		"--lookup-timeout", "150ms", "--log-level", "info")
	haWarmUp(t, s, keys)

	load := startHALoad(s, keys)
	defer load.stop()       // idempotent; stopped below on the normal path
	time.Sleep(time.Second) // steady state: misses and refreshes reach Vault
	load.markKill()
	c.Kill(leader)
	f := haFailover(t, c, leader, env, &ring, s, load)
	time.Sleep(time.Second) // steady state again
	load.stop()

	start := time.Now()
	c.Restart(t, leader)
	f.rejoin = time.Since(start)
	haRejoined(t, c, leader, env, &ring, s, keys)

	f.startup = c.Startup
	t.Logf("HA: %s", f.summary(c, leader, load))
	load.report(t)
}

// haCreateKeys creates the keys through the standby: 4 to cache, 40 for
// the load to look up one after another, a revoked one; and one unknown
// to Vault.
func haCreateKeys(t *testing.T, env envMap, ring *keyring) haKeys {
	t.Helper()
	var k haKeys
	for range 4 {
		k.cached = append(k.cached, ring.add(createKey(t, env, "--tenant", "acme")))
	}
	for range 40 {
		k.uncached = append(k.uncached, ring.add(createKey(t, env, "--tenant", "acme")))
	}
	k.revoked = ring.add(createKey(t, env, "--tenant", "acme"))
	mustCLI(t, env, "keys", "revoke", k.revoked.ID)
	k.unknown = ring.add(createKey(t, envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/k.yaml"}, "--tenant", "x"))
	return k
}

// haWarmUp caches the cached keys and checks the others' answers while
// the cluster is healthy.
func haWarmUp(t *testing.T, s *server, k haKeys) {
	t.Helper()
	for _, c := range k.cached {
		if o := s.decide(t, c.Key, checkFlags{}); o.status != 200 {
			t.Fatalf("cached key before the kill: %v", o)
		}
	}
	if o := s.decide(t, k.revoked.Key, checkFlags{}); o.reason != "revoked_key" {
		t.Fatalf("revoked key before the kill: %v", o)
	}
	if o := s.decide(t, k.unknown.Key, checkFlags{}); o.reason != "unknown_key" {
		t.Fatalf("unknown key before the kill: %v", o)
	}
}

// haFigures are the measured times, from the kill unless said otherwise.
type haFigures struct {
	startup, election        time.Duration
	newActive                int
	created, allowed, rejoin time.Duration // new key created, first allowed; rejoin from Restart
	createAttempts           int
	healthProbes, notServing int // health checks during the election, those not SERVING
}

// haFailover waits for the new active node, then creates a key through
// the standby and waits until keygate allows it and until the load's
// uncached lookups are allowed again.
func haFailover(t *testing.T, c *vaulttest.VaultCluster, old int, env envMap, ring *keyring, s *server, load *haLoad) haFigures {
	t.Helper()
	var f haFigures
	f.newActive = -1
	for f.newActive < 0 || f.newActive == old {
		if time.Since(load.kill) > 30*time.Second {
			t.Fatalf("no new active node 30s after killing %s", c.NodeID(old))
		}
		time.Sleep(20 * time.Millisecond)
		f.healthProbes++
		if !s.serving() {
			f.notServing++
		}
		f.newActive = c.Leader()
	}
	f.election = time.Since(load.kill)
	if f.notServing > 0 {
		t.Errorf("health was not SERVING %d times during the election: readiness must not flap (Envoy would eject every replica)", f.notServing)
	}

	fresh, attempts := createRetry(t, env)
	ring.add(fresh)
	f.created, f.createAttempts = time.Since(load.kill), attempts
	eventually(t, 20*time.Second, "key created after the election allowed", func() bool {
		o := s.decide(t, fresh.Key, checkFlags{})
		if o.status != 200 && o.reason != "store_unavailable" {
			t.Fatalf("key created after the election: %v, want 200 or 503 store_unavailable", o)
		}
		return o.status == 200
	})
	f.allowed = time.Since(load.kill)
	eventually(t, 20*time.Second, "uncached keys allowed again", load.recovered)
	return f
}

// createRetry runs `keys create` until it succeeds (at most 40 attempts,
// 250 ms apart, for 20 s): right after an election the standby may not
// yet know the new active node.
func createRetry(t *testing.T, env envMap) (created, int) {
	t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; attempt <= 40 && time.Now().Before(deadline); attempt++ {
		out, stderr, err := cli(t, env, "keys", "create", "--json", "--tenant", "acme")
		var c created
		if err == nil && jsonUnmarshal(out, &c) == nil && c.Key != "" {
			return c, attempt
		}
		last = fmt.Sprintf("%v: %s", err, redact(stderr))
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("keys create after the election: no success in 40 attempts or 20 s; last: %s", last)
	return created{}, 0
}

// haRejoined checks the restarted node is a voter again, that keygate
// still allows the cached keys, and that a key created through the
// restarted node (now a standby) is allowed.
func haRejoined(t *testing.T, c *vaulttest.VaultCluster, node int, env envMap, ring *keyring, s *server, k haKeys) {
	t.Helper()
	var voters []string
	for _, srv := range c.Servers(t) {
		if srv.Voter {
			voters = append(voters, srv.NodeID)
		}
	}
	if !slices.Contains(voters, c.NodeID(node)) || len(voters) != c.Len() {
		t.Errorf("after restart, voters %v: want all %d nodes", voters, c.Len())
	}
	for _, key := range k.cached {
		if o := s.decide(t, key.Key, checkFlags{}); o.status != 200 {
			t.Errorf("cached key after the rejoin: %v", o)
		}
	}
	viaRestarted := env.with("VAULT_ADDR", c.Addr(node))
	k2 := ring.add(createKey(t, viaRestarted, "--tenant", "acme"))
	if o := s.decide(t, k2.Key, checkFlags{}); o.status != 200 {
		t.Errorf("key created through the rejoined node: %v", o)
	}
}

func (f haFigures) summary(c *vaulttest.VaultCluster, old int, l *haLoad) string {
	ms := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	l.mu.Lock()
	defer l.mu.Unlock()
	window := "none seen"
	if !l.first503.IsZero() {
		window = fmt.Sprintf("%s (from +%s to +%s, %d denials)", ms(l.last503.Sub(l.first503)),
			ms(l.first503.Sub(l.kill)), ms(l.last503.Sub(l.kill)), l.counts["uncached 503 store_unavailable"])
	}
	return fmt.Sprintf("start-up %s; killed active %s under load; %s active after %s; "+
		"uncached misses denied 503 for %s, allowed again +%s; "+
		"key created after the election at +%s (create attempts: %d) allowed at +%s (%s after the election); "+
		"%s rejoined as a voter in %s; %d checks, %d wrong; health not SERVING in %d of %d probes during the election",
		ms(f.startup), c.NodeID(old), c.NodeID(f.newActive), ms(f.election),
		window, ms(l.okAfter.Sub(l.kill)),
		ms(f.created), f.createAttempts, ms(f.allowed), ms(f.allowed-f.election),
		c.NodeID(old), ms(f.rejoin), l.total, l.nWrong, f.notServing, f.healthProbes)
}

// haLoad is the load: two workers checking the cached keys, one the
// uncached keys (each until it is allowed), one the revoked and unknown
// keys. It records every decision.
type haLoad struct {
	s    *server
	keys haKeys
	kill time.Time // set by markKill; guarded by mu for the workers

	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu                sync.Mutex
	counts            map[string]int // "class status reason" → decisions
	total, nWrong     int
	wrong             []string  // the first few wrong decisions, for the failure message
	first503, last503 time.Time // uncached lookups denied 503 after the kill
	okAfter           time.Time // first uncached allow after last503
	used              int       // uncached keys allowed so far
}

func startHALoad(s *server, k haKeys) *haLoad {
	l := &haLoad{s: s, keys: k, done: make(chan struct{}), counts: map[string]int{}}
	cached := func(i int) func() {
		return func() {
			for n := i; l.running(10 * time.Millisecond); n++ {
				l.check("cached", k.cached[n%len(k.cached)].Key, func(o outcome) bool { return o.status == 200 })
			}
		}
	}
	l.wg.Go(cached(0))
	l.wg.Go(cached(1))
	l.wg.Go(l.uncached)
	l.wg.Go(func() {
		for n := 0; l.running(10 * time.Millisecond); n++ {
			if n%2 == 0 {
				l.check("revoked", k.revoked.Key, func(o outcome) bool { return o.status != 200 })
			} else {
				l.check("unknown", k.unknown.Key, func(o outcome) bool {
					return o.reason == "unknown_key" || o.reason == "store_unavailable"
				})
			}
		}
	})
	return l
}

// uncached checks one uncached key until it is allowed, then the next:
// a new key every 100 ms while Vault answers, the same one every 20 ms
// while it is denied 503.
func (l *haLoad) uncached() {
	pause := time.Duration(0)
	for i := 0; i < len(l.keys.uncached) && l.running(pause); {
		o := l.check("uncached", l.keys.uncached[i].Key, func(o outcome) bool {
			return o.status == 200 || o.reason == "store_unavailable"
		})
		pause = 20 * time.Millisecond
		if o.status == 200 {
			i, pause = i+1, 100*time.Millisecond
		}
		l.mu.Lock()
		l.used = i
		l.mu.Unlock()
	}
}

// running waits pause and says whether the load goes on.
func (l *haLoad) running(pause time.Duration) bool {
	select {
	case <-l.done:
		return false
	case <-time.After(pause):
		return true
	}
}

func (l *haLoad) stop() {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
}

// check sends one Check and records it; ok says whether the answer is
// right for the class.
func (l *haLoad) check(class, rawKey string, ok func(outcome) bool) outcome {
	o, err := l.s.tryDecide(rawKey)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.counts[class+" "+o.String()]++
	if err != nil || !ok(o) {
		l.nWrong++
		if len(l.wrong) < 10 {
			l.wrong = append(l.wrong, fmt.Sprintf("%s key: %v (err %v) at %s", class, o, err, now.Format("15:04:05.000")))
		}
	}
	if class != "uncached" || l.kill.IsZero() || now.Before(l.kill) {
		return o
	}
	switch {
	case o.reason == "store_unavailable":
		if l.first503.IsZero() {
			l.first503 = now
		}
		l.last503, l.okAfter = now, time.Time{}
	case o.status == 200 && l.okAfter.IsZero() && !l.first503.IsZero():
		l.okAfter = now
	}
	return o
}

// markKill notes the time of the kill: uncached 503s count from it.
func (l *haLoad) markKill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kill = time.Now()
}

// recovered: after 503s, an uncached key was allowed.
func (l *haLoad) recovered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.okAfter.IsZero()
}

// report fails the test on any wrong decision or a load that saw no
// outage, and logs the decisions by class.
func (l *haLoad) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l.counts)) {
		fmt.Fprintf(&b, " [%s: %d]", k, l.counts[k])
	}
	t.Logf("HA decisions:%s; uncached keys allowed: %d of %d (the worker stops when all are)", b.String(), l.used, len(l.keys.uncached))
	if l.nWrong > 0 {
		t.Errorf("%d wrong decisions during the failover; first ones:\n%s", l.nWrong, strings.Join(l.wrong, "\n"))
	}
	if l.first503.IsZero() {
		t.Error("no uncached lookup was denied 503 after the kill: the load did not see the outage")
	}
}

// serving says whether keygate's gRPC health reports SERVING.
func (s *server) serving() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// tryDecide is decide without failing the test, for the load's goroutines.
func (s *server) tryDecide(rawKey string) (outcome, error) {
	f := checkFlags{method: "GET", path: "/orders", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: rawKey}
	req, err := f.request(nil)
	if err != nil {
		return outcome{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.client.Check(ctx, req)
	if err != nil {
		return outcome{}, err
	}
	return toOutcome(resp), nil
}
