package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/keygate/keygate/internal/vaulttest"
)

// healthServices are the names a health check may ask about: the server
// as a whole, and the service Envoy's gRPC health check names.
var healthServices = []string{"", "envoy.service.auth.v3.Authorization"}

const (
	healthPollEvery  = 20 * time.Millisecond
	healthPollRounds = 5000 // ≥ 100 s at 20 ms a round: longer than any test here
	healthWatchMax   = 100  // Watch updates read per stream
	maxBadNoted      = 20
)

// healthWatch polls health Check for every name in healthServices every
// 20 ms and follows one Watch stream per name, noting every answer that is
// not SERVING (an RPC error counts: a prober would fail on it too).
type healthWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	mu      sync.Mutex
	checks  int      // Check answers
	updates int      // Watch updates
	nBad    int      // answers that were not SERVING
	bad     []string // the first maxBadNoted of them, and when
	spent   bool     // the poll loop ran out of rounds before stop
}

// watchHealth starts watching s's health; stop (also run at cleanup)
// ends it and waits for its goroutines.
func watchHealth(t *testing.T, s *server) *healthWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthWatch{cancel: cancel, start: time.Now()}
	t.Cleanup(h.stop)
	hc := healthpb.NewHealthClient(s.conn)
	for _, svc := range healthServices {
		stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health Watch %q: %v", svc, err)
		}
		h.wg.Go(func() { h.follow(ctx, svc, stream) })
	}
	h.wg.Go(func() { h.poll(ctx, hc) })
	return h
}

func (h *healthWatch) poll(ctx context.Context, hc healthpb.HealthClient) {
	for range healthPollRounds {
		for _, svc := range healthServices {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			r, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: svc})
			cancel()
			if ctx.Err() != nil {
				return
			}
			h.note("Check", svc, r.GetStatus(), err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(healthPollEvery):
		}
	}
	h.mu.Lock()
	h.spent = true
	h.mu.Unlock()
}

func (h *healthWatch) follow(ctx context.Context, svc string, stream healthpb.Health_WatchClient) {
	for range healthWatchMax {
		r, err := stream.Recv()
		if ctx.Err() != nil {
			return
		}
		h.note("Watch", svc, r.GetStatus(), err)
		if err != nil {
			return
		}
	}
}

func (h *healthWatch) note(how, svc string, st healthpb.HealthCheckResponse_ServingStatus, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if how == "Check" {
		h.checks++
	} else {
		h.updates++
	}
	if err == nil && st == healthpb.HealthCheckResponse_SERVING {
		return
	}
	what := st.String()
	if err != nil {
		what = "error " + status.Code(err).String()
	}
	if h.nBad++; len(h.bad) < maxBadNoted {
		h.bad = append(h.bad, fmt.Sprintf("%s %q: %s at +%s", how, svc, what, time.Since(h.start).Round(time.Millisecond)))
	}
}

// probes is the number of Check answers so far.
func (h *healthWatch) probes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checks
}

func (h *healthWatch) stop() {
	h.cancel()
	h.wg.Wait()
}

// TestReadinessVaultOutage: while Vault is sealed, and then killed and
// restarted, health stays SERVING for both service names (polled every
// 20 ms and watched), a cached key stays allowed from the stale cache, an
// unseen key gets 503, and keys created after Vault returns are allowed.
// Flapping readiness would eject every replica and defeat stale-if-error.
func TestReadinessVaultOutage(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	v := vaulttest.Server(t)
	const foundTTL, sealFor, killFor = 500 * time.Millisecond, 1500 * time.Millisecond, time.Second
	s := serve(t, env, ring.all, "--found-ttl", foundTTL.String(), "--stale-ttl", "30s",
		"--lookup-timeout", "100ms", "--pepper-refresh", "200ms", "--journal-poll", "200ms")
	cached := ring.add(createKey(t, env, "--tenant", "acme"))
	unseen := ring.add(createKey(t, envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/k.yaml"}, "--tenant", "x"))
	hw := watchHealth(t, s)

	warmed, before := warm(t, s, cached), hw.probes()
	v.Seal(t)
	sealed := true
	t.Cleanup(func() {
		if sealed {
			v.Unseal(t)
		}
	})
	lastAllowed, n := whileDown(t, s, cached, unseen, sealFor)
	v.Unseal(t)
	sealed = false
	t.Logf("sealed %s: %d health probes, %d Check pairs; cached key allowed until %s after its last read (found-ttl %s)",
		sealFor, hw.probes()-before, n, lastAllowed.Sub(warmed).Round(time.Millisecond), foundTTL)
	if lastAllowed.Sub(warmed) <= foundTTL {
		t.Errorf("the seal did not outlast found-ttl %s: the stale path was not exercised", foundTTL)
	}
	allowedSoon(t, s, ring.add(createKey(t, env, "--tenant", "acme")), "key created after unseal")

	// Killed last: the restarted dev server is empty.
	warm(t, s, cached)
	before, down := hw.probes(), time.Now()
	v.Kill()
	t.Cleanup(func() { vaulttest.Server(t) }) // restarts Vault if it is still down
	_, n = whileDown(t, s, cached, unseen, killFor)
	v.Restart(t)
	t.Logf("killed for %s, back after %s: %d health probes, %d Check pairs",
		killFor, time.Since(down).Round(time.Millisecond), hw.probes()-before, n)
	allowedSoon(t, s, ring.add(createKey(t, env, "--tenant", "acme")), "key created after restart")

	hw.stop()
	assertAlwaysServing(t, hw)
	if n := strings.Count(s.logs.String(), `"msg":"cannot load peppers from the store"`); n == 0 {
		t.Error("the pepper refresher never saw the outage: readiness was not put to the test")
	}
}

// warm makes the cached key's record fresh from Vault and says when.
func warm(t *testing.T, s *server, k created) time.Time {
	t.Helper()
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Fatalf("key with Vault up: %v, want allowed", o)
	}
	return time.Now()
}

// whileDown sends a Check pair every 50 ms for d (at most 100 pairs): the
// cached key must stay allowed (stale-if-error) and an unseen key must get
// 503 store_unavailable. It returns the last allow and the pairs sent.
func whileDown(t *testing.T, s *server, cached, unseen created, d time.Duration) (time.Time, int) {
	t.Helper()
	var last time.Time
	n := 0
	for end := time.Now().Add(d); n < 100 && time.Now().Before(end); n++ {
		if o := s.decide(t, cached.Key, checkFlags{}); o.status != 200 {
			t.Fatalf("cached key with Vault down, within the stale window: %v, want allowed", o)
		}
		last = time.Now()
		if o := s.decide(t, unseen.Key, checkFlags{}); o.status != 503 || o.reason != "store_unavailable" {
			t.Fatalf("unseen key with Vault down: %v, want 503 store_unavailable", o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return last, n
}

func allowedSoon(t *testing.T, s *server, k created, what string) {
	t.Helper()
	took := eventually(t, 10*time.Second, what+" allowed", func() bool {
		return s.decide(t, k.Key, checkFlags{}).status == 200
	})
	t.Logf("%s allowed after %s", what, took.Round(time.Millisecond))
}

func assertAlwaysServing(t *testing.T, hw *healthWatch) {
	t.Helper()
	hw.mu.Lock()
	defer hw.mu.Unlock()
	t.Logf("health over %s: %d Check answers, %d Watch updates, %d not SERVING",
		time.Since(hw.start).Round(time.Millisecond), hw.checks, hw.updates, hw.nBad)
	if hw.nBad > 0 {
		t.Errorf("readiness flapped while Vault was briefly down (%d answers not SERVING):\n%s",
			hw.nBad, strings.Join(hw.bad, "\n"))
	}
	if hw.spent {
		t.Errorf("the health poller ran out of its %d rounds before the test ended", healthPollRounds)
	}
	if hw.updates < len(healthServices) {
		t.Errorf("%d Watch updates, want at least the first SERVING of each of %d streams", hw.updates, len(healthServices))
	}
}

// TestReadinessWaitsForFirstLogin: while keygate cannot log in to Vault
// yet, health says NOT_SERVING for both names and a valid key is denied
// 503 (never 401); once the login can succeed, health turns SERVING (also
// on a Watch stream) and the key is allowed.
func TestReadinessWaitsForFirstLogin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, env envMap) (args []string, fix func())
	}{
		{"token file missing", tokenFileLater},
		{"approle secret id wrong", appRoleFixedLater},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ring keyring
			env := vaultEnv(t)
			k := ring.add(createKey(t, env, "--tenant", "acme"))
			args, fix := tc.setup(t, env)
			serverEnv := envMap{"VAULT_ADDR": env["VAULT_ADDR"], "KEYGATE_VAULT_BASE_PATH": env["KEYGATE_VAULT_BASE_PATH"]}
			s := startServe(t, serverEnv, ring.all, args...)
			updates := watchUpdates(t, s, healthServices[1])
			if st := <-updates; st != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("first Watch update before any login: %v, want NOT_SERVING", st)
			}
			eventually(t, 10*time.Second, "two failed Vault logins", func() bool {
				return strings.Count(s.logs.String(), `"msg":"vault login failed"`) >= 2
			})
			assertNotServing(t, s)
			if o := s.decide(t, k.Key, checkFlags{}); o.status != 503 || o.reason != "store_unavailable" {
				t.Errorf("valid key before the first login: %v, want 503 store_unavailable", o)
			}
			fix()
			fixed := time.Now()
			select {
			case st := <-updates:
				if st != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("Watch update after login became possible: %v, want SERVING", st)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no Watch update within 20 s of the login becoming possible")
			}
			t.Logf("SERVING %s after the login became possible", time.Since(fixed).Round(time.Millisecond))
			s.waitServing(t)
			allowedSoon(t, s, k, "key after the first login")
		})
	}
}

// watchUpdates streams the health of svc; the channel closes when the
// stream ends (at test cleanup at the latest).
func watchUpdates(t *testing.T, s *server, svc string) <-chan healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	stream, err := healthpb.NewHealthClient(s.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		cancel()
		t.Fatalf("health Watch: %v", err)
	}
	out := make(chan healthpb.HealthCheckResponse_ServingStatus, healthWatchMax)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		for range healthWatchMax {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			out <- r.GetStatus()
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return out
}

// assertNotServing probes both names 10 times over ~200 ms.
func assertNotServing(t *testing.T, s *server) {
	t.Helper()
	hc := healthpb.NewHealthClient(s.conn)
	for range 10 {
		for _, svc := range healthServices {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			cancel()
			if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("health %q before the first Vault login: %v (err %v), want NOT_SERVING", svc, r.GetStatus(), err)
			}
		}
		time.Sleep(healthPollEvery)
	}
}

// tokenFileLater: --vault-token-file names a file that does not exist
// yet; fix writes Vault's token into it.
func tokenFileLater(t *testing.T, _ envMap) ([]string, func()) {
	path := filepath.Join(t.TempDir(), "vault-token")
	token := vaulttest.Server(t).Token
	return []string{"--vault-token-file", path}, func() {
		if err := writeFileBytes(path, []byte(token)); err != nil {
			t.Fatal(err)
		}
	}
}

// appRoleFixedLater: AppRole login with a secret id file holding a wrong
// secret id (Vault refuses the login); fix writes the real one.
func appRoleFixedLater(t *testing.T, env envMap) ([]string, func()) {
	roleID, secretID := appRole(t, env["KEYGATE_VAULT_BASE_PATH"])
	path := filepath.Join(t.TempDir(), "secret-id")
	if err := writeFileBytes(path, []byte(rand.Text())); err != nil {
		t.Fatal(err)
	}
	return []string{"--vault-auth", "approle", "--vault-approle-role-id", roleID, "--vault-approle-secret-id-file", path},
		func() {
			if err := writeFileBytes(path, []byte(secretID)); err != nil {
				t.Fatal(err)
			}
		}
}

// appRole makes an AppRole that may read keygate's paths under base and
// returns its role id and a secret id.
func appRole(t *testing.T, base string) (roleID, secretID string) {
	t.Helper()
	client := vaulttest.Server(t).Client(t)
	err := client.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"})
	if err != nil && !strings.Contains(err.Error(), "path is already in use") {
		t.Fatal(err)
	}
	var rules strings.Builder
	for _, p := range []string{"keys/+", "pepper", "journal"} {
		fmt.Fprintf(&rules, "path \"secret/data/%s/%s\" { capabilities = [\"read\"] }\n", base, p)
	}
	name := "ready-" + base
	if err := client.Sys().PutPolicy(name, rules.String()); err != nil {
		t.Fatal(err)
	}
	role := "auth/approle/role/" + name
	if _, err := client.Logical().Write(role, map[string]any{"token_ttl": "1h", "token_policies": name}); err != nil {
		t.Fatal(err)
	}
	rid, err := client.Logical().Read(role + "/role-id")
	if err != nil || rid == nil {
		t.Fatalf("read role id: %v", err)
	}
	sid, err := client.Logical().Write(role+"/secret-id", nil)
	if err != nil || sid == nil {
		t.Fatalf("make secret id: %v", err)
	}
	return rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
}
