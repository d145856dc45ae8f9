package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/rltest"
)

// replica is one `keygate serve` of a set sharing a store and the rate
// limit service; via says how the test asks it (gRPC or HTTP mode).
type replica struct {
	*server
	name    string
	http    string // base URL when asked over HTTP mode; "": gRPC
	metrics string // base URL of /metrics, or ""
}

// ask sends one request for rawKey and returns its status and reason (and
// the deny's rate limit headers, lower-case names), over the replica's
// mode.
func (r *replica) ask(t *testing.T, rawKey string) outcome {
	t.Helper()
	if r.http == "" {
		return r.decide(t, rawKey, checkFlags{})
	}
	resp := httpGet(t, r.http+"/auth", map[string]string{"X-Api-Key": rawKey,
		"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/orders", "X-Forwarded-Host": "api.example.com"})
	o := outcome{status: resp.StatusCode, reason: "allowed", headers: map[string]string{}}
	if resp.StatusCode != http.StatusOK {
		o.reason = resp.Header.Get("X-Keygate-Reason")
	}
	for _, h := range []string{"retry-after", "ratelimit-policy", "ratelimit"} {
		if v := resp.Header.Get(h); v != "" {
			o.headers[h] = v
		}
	}
	return o
}

// burst sends n requests for rawKey spread round-robin over the replicas,
// one goroutine per replica, and returns the outcomes by reason and the
// count each replica allowed.
func burst(t *testing.T, replicas []*replica, rawKey string, n int) (map[string]int, []int, []outcome) {
	t.Helper()
	var mu sync.Mutex
	reasons, perReplica, denies := map[string]int{}, make([]int, len(replicas)), []outcome(nil)
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() {
			for j := i; j < n; j += len(replicas) {
				o := r.ask(t, rawKey)
				mu.Lock()
				reasons[o.reason]++
				if o.status == 200 {
					perReplica[i]++
				} else {
					denies = append(denies, o)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return reasons, perReplica, denies
}

// clearOfMinute waits, when fewer than margin remain of the current UTC
// minute, until the next one begins: a burst must fit in one window of
// the service's fixed windows.
func clearOfMinute(t *testing.T, margin time.Duration) {
	t.Helper()
	now := time.Now()
	if left := now.Truncate(time.Minute).Add(time.Minute).Sub(now); left < margin {
		t.Logf("waiting %s for the next minute", left.Round(time.Millisecond))
		time.Sleep(left + 20*time.Millisecond)
	}
}

var rlMetricRE = regexp.MustCompile(`(?m)^keygate_ratelimit_requests_total\{result="([a-z_]+)"\} (\d+)$`)

// rlCalls reads keygate_ratelimit_requests_total by result from r's /metrics.
func (r *replica) rlCalls(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range rlMetricRE.FindAllStringSubmatch(getBody(t, r.metrics+"/metrics"), -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = n
	}
	return out
}

// TestGlobalLimitsAcrossReplicas: three `keygate serve` replicas (one asked
// over the HTTP mode) share each key's global limits through the real
// envoyproxy/ratelimit service and Redis: a burst spread over them is
// allowed the key's limit in total, not three times it; local limits keep
// working beside the global ones; keys without global limits never call
// the service. Then the failure modes with Redis killed, Redis back, the
// service killed and restarted.
func TestGlobalLimitsAcrossReplicas(t *testing.T) {
	start := time.Now()
	redis := rltest.StartRedis(t)
	svc := rltest.Start(t, redis, rltest.Options{})
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	keys := map[string]created{
		"rate":  ring.add(createKey(t, env, "--tenant", "acme", "--global-rate-limit", "30/minute")),
		"quota": ring.add(createKey(t, env, "--tenant", "acme", "--global-quota", "12/hour")),
		"both":  ring.add(createKey(t, env, "--tenant", "acme", "--global-rate-limit", "20/minute", "--global-quota", "1000/day")),
		"local": ring.add(createKey(t, env, "--tenant", "acme", "--rate-limit", "5/hour", "--global-rate-limit", "100/minute")),
		"none":  ring.add(createKey(t, env, "--tenant", "acme")),
	}
	var fresh []created // for the failure modes: one per replica, never counted before
	for range 3 {
		fresh = append(fresh, ring.add(createKey(t, env, "--tenant", "acme", "--global-rate-limit", "1000/minute")))
	}
	if out := mustCLI(t, env, "keys", "show", keys["both"].ID, "--json"); !strings.Contains(out, `"global_rate_limit":{"requests":20,"per":"minute"}`) ||
		!strings.Contains(out, `"global_quota":{"requests":1000,"per":"day"}`) {
		t.Fatalf("record: %s", out)
	}
	// A generous timeout: the counts must not depend on how loaded the
	// machine is (a timed-out call is answered by the failure mode).
	common := []string{"--ratelimit-service", svc.GRPCAddr, "--ratelimit-timeout", "1s", "--found-ttl", "1h"}
	var replicas []*replica
	for i, mode := range []string{"auto", "deny", "allow"} {
		args := append([]string{"--ratelimit-failure", mode, "--metrics-addr", "127.0.0.1:0"}, common...)
		if i == 2 {
			args = append(args, "--http-addr", "127.0.0.1:0")
		}
		s := serve(t, env, ring.all, args...)
		r := &replica{server: s, name: fmt.Sprintf("replica %d (%s)", i, mode), metrics: s.logAddr(t, "serving metrics", "metrics_addr")}
		if i == 2 {
			r.http = s.httpAddr(t)
		}
		replicas = append(replicas, r)
	}
	t.Logf("Redis, the service and 3 replicas ready in %s", time.Since(start).Round(time.Millisecond))

	clearOfMinute(t, 3*time.Second)
	burstStart := time.Now()
	for _, tt := range []struct {
		key     string
		n       int
		allowed int
		denied  string
		policy  string
	}{
		{"rate", 75, 30, "rate_limited", `"rate";q=30;w=60`},
		{"quota", 30, 12, "quota_exceeded", `"quota";q=12;w=3600`},
		{"both", 50, 20, "rate_limited", `"rate";q=20;w=60, "quota";q=1000;w=86400`},
		{"local", 30, 15, "rate_limited", `"rate";q=5;w=3600`}, // 5/hour on each of 3 replicas; the global 100 is not reached
		{"none", 30, 30, "", ""},
	} {
		reasons, perReplica, denies := burst(t, replicas, keys[tt.key].Key, tt.n)
		got := reasons["allowed"]
		t.Logf("%s: %d requests over 3 replicas: %d allowed (per replica %v), want %d; %v", tt.key, tt.n, got, perReplica, tt.allowed, reasons)
		if got < tt.allowed-1 || got > tt.allowed+1 || reasons[tt.denied] != tt.n-got {
			t.Errorf("%s: %v, want %d (±1) allowed and the rest %s", tt.key, reasons, tt.allowed, tt.denied)
		}
		for _, o := range denies {
			ra, _ := strconv.Atoi(o.headers["retry-after"])
			if o.status != 429 || ra < 1 || ra > 3600 || o.headers["ratelimit-policy"] != tt.policy || !strings.HasSuffix(o.headers["ratelimit"], ";t="+o.headers["retry-after"]) {
				t.Errorf("%s: deny %v headers %v, want 429 with Retry-After and RateLimit-Policy %s", tt.key, o, o.headers, tt.policy)
				break
			}
		}
	}
	t.Logf("the bursts took %s", time.Since(burstStart).Round(time.Millisecond))
	// Every call to the service was answered (none timed out or failed),
	// and only keys with global limits called it: replica 0's calls are its
	// requests of rate, quota and both, plus those of local its own
	// 5/hour let through.
	calls := replicas[0].rlCalls(t)
	if want := 25 + 10 + 17 + 5; calls["ok"]+calls["over_limit"] != want || calls["timeout"]+calls["error"] != 0 {
		t.Errorf("replica 0 called the service %v, want %d answered calls and no failures", calls, want)
	}

	// Redis down: the service answers errors, each replica's failure mode
	// answers. auto: a key with a global quota is denied, one with only a
	// global rate allowed; deny: both denied; allow: both allowed.
	redis.Kill()
	for i, want := range []struct{ rate, quota outcome }{
		{outcome{status: 200, reason: "allowed"}, outcome{status: 503, reason: "ratelimit_unavailable"}},
		{outcome{status: 503, reason: "ratelimit_unavailable"}, outcome{status: 503, reason: "ratelimit_unavailable"}},
		{outcome{status: 200, reason: "allowed"}, outcome{status: 200, reason: "allowed"}},
	} {
		r := replicas[i]
		for _, c := range []struct {
			key  string
			want outcome
		}{{fresh[i].Key, want.rate}, {keys["quota"].Key, want.quota}, {keys["none"].Key, outcome{status: 200, reason: "allowed"}}} {
			askStart := time.Now()
			if o := r.ask(t, c.key); o.status != c.want.status || o.reason != c.want.reason {
				t.Errorf("%s, Redis down: %v, want %v", r.name, o, c.want)
			}
			if took := time.Since(askStart); took > 2*time.Second {
				t.Errorf("%s, Redis down: a decision took %s", r.name, took)
			}
		}
	}
	if calls := replicas[0].rlCalls(t); calls["error"] != 2 {
		t.Errorf("replica 0 with Redis down: %v, want 2 errors counted", calls)
	}

	// Redis back (empty): counting resumes.
	redis.Restart(t)
	took := eventually(t, 10*time.Second, "counting again after Redis restarted", func() bool {
		return replicas[1].ask(t, keys["quota"].Key).status == 200
	})
	t.Logf("Redis restarted: replica 1 counts again after %s", took.Round(time.Millisecond))

	// The service killed: replicas fail at once (no waiting for a
	// connection), as their mode says; restarted, it is used again.
	svc.Kill()
	if o := replicas[1].ask(t, keys["rate"].Key); o.reason != "ratelimit_unavailable" {
		t.Errorf("deny mode, service down: %v", o)
	}
	if o := replicas[0].ask(t, keys["none"].Key); o.status != 200 {
		t.Errorf("a key without global limits, service down: %v", o)
	}
	svc.Restart(t)
	for _, r := range replicas[:2] { // the replicas that deny on failure show the recovery
		took := eventually(t, 10*time.Second, r.name+" using the restarted service", func() bool {
			return r.ask(t, keys["quota"].Key).reason != "ratelimit_unavailable"
		})
		t.Logf("service restarted: %s uses it again after %s", r.name, took.Round(time.Millisecond))
	}
	t.Logf("TestGlobalLimitsAcrossReplicas took %s", time.Since(start).Round(time.Millisecond))
}

// TestGlobalLimitFlags: keys create|update set, change and clear the
// global limits; bad values and contradictions are errors naming the flag
// or field, and nothing is written.
func TestGlobalLimitFlags(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme", "--global-rate-limit", "100/m", "--global-quota", "10000/day", "--quota", "50/hour"))
	show := func() string { return mustCLI(t, env, "keys", "show", k.ID, "--json") }
	if out := show(); !strings.Contains(out, `"global_rate_limit":{"requests":100,"per":"minute"}`) ||
		!strings.Contains(out, `"global_quota":{"requests":10000,"per":"day"}`) || !strings.Contains(out, `"quota":{"requests":50,"per":"hour"}`) {
		t.Fatalf("created: %s", out)
	}
	mustCLI(t, env, "keys", "update", k.ID, "--global-rate-limit", "5/s", "--no-global-quota")
	if out := show(); !strings.Contains(out, `"global_rate_limit":{"requests":5,"per":"second"}`) || strings.Contains(out, "global_quota") {
		t.Errorf("updated: %s", out)
	}
	mustCLI(t, env, "keys", "update", k.ID, "--no-global-rate-limit")
	if out := show(); strings.Contains(out, "global_") || !strings.Contains(out, `"quota":{"requests":50,"per":"hour"}`) {
		t.Errorf("cleared: %s", out)
	}
	before := show()
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--global-rate-limit", "5/fortnight"}, "--global-rate-limit"},
		{[]string{"--global-quota", "1/s"}, `"global_quota.per"`},
		{[]string{"--no-global-quota", "--global-quota", "1/day"}, "--no-global-quota"},
		{[]string{"--no-global-rate-limit", "--global-rate-limit", "1/day"}, "--no-global-rate-limit"},
		{[]string{"--global-rate-limit", "0/minute"}, "--global-rate-limit"},
	} {
		_, _, err := cli(t, env, append([]string{"keys", "update", k.ID}, bad.args...)...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("keys update %v: %v, want an error naming %s", bad.args, err, bad.want)
		}
	}
	if _, _, err := cli(t, env, "keys", "create", "--tenant", "acme", "--global-rate-limit", "5/fortnight"); err == nil {
		t.Error("keys create with a bad --global-rate-limit")
	}
	if after := show(); after != before {
		t.Errorf("a refused update changed the record:\n%s\n%s", before, after)
	}
}
