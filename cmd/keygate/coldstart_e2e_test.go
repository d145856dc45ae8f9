package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/vault"
)

// The cold-start measurement's size. make test runs the small default;
// `make bench-coldstart` runs COLDSTART_KEYS=5000 (BENCHMARKS.md).
// COLDSTART_RATE sets the load, COLDSTART_WARMUP the warmed replica's
// --warmup-timeout.
const (
	coldDefaultKeys = 1500
	coldDefaultRate = 1000.0 // Check/s
	coldRounds      = 2      // times each key is sent to the new replica
	coldWorkers     = 256    // a cold replica's misses wait on Vault: enough workers to keep the rate
)

// coldKey is one issued key and the CheckRequest that carries it.
type coldKey struct {
	id  string
	raw string
	req *authv3.CheckRequest
}

// TestColdReplica: replica A serves a steady load over many distinct valid
// keys (round robin, each at the same rate) until the hot keys hold all of
// them, and stops; then a new replica B starts and, once it reports
// SERVING, gets the same load (every key twice). Without a warm-up (--warmup-timeout 0, the old
// behaviour) B answers valid keys 503 while --store-read-rate holds back its
// cold misses; with it, none. Both figures, and what the warm-up cost in
// Vault reads (counted in Vault's audit log), are logged.
func TestColdReplica(t *testing.T) {
	n, checkRate := envInt(t, "COLDSTART_KEYS", coldDefaultKeys), float64(envInt(t, "COLDSTART_RATE", int(coldDefaultRate)))
	env := vaultEnv(t)
	audit := &auditReadCounter{file: auditFile(t), base: env["KEYGATE_VAULT_BASE_PATH"]}
	var ring keyring
	start := time.Now()
	keys := issueColdKeys(t, env, n, &ring)
	t.Logf("%d keys created in %.1f s", n, time.Since(start).Seconds())

	// A is the replica already serving: no read cap and no unknown-key
	// throttle, and every key read once before the load starts; it records
	// the hot keys every second.
	a := serve(t, env, ring.all, "--log-level", "info", "--usage-interval", "0", "--store-read-rate", "-1", "--unknown-key-rate", "-1",
		"--hot-keys-interval", "1s")
	preload(t, a, keys)
	load := startColdLoad(a, keys, checkRate)
	waitHotKeys(t, env, n)
	if st := load.stop(); st.other > 0 || st.limited > 0 {
		t.Fatalf("replica A: %d answers that were neither allow nor 503 (first: %s)", st.other+st.limited, st.firstOther)
	}
	t.Logf("replica A served them and recorded the hot keys in %.1f s", time.Since(start).Seconds())
	// A has done its part; stopped, its refreshes and recordings do not
	// count among the new replicas' Vault reads.
	a.stop(t, ring.all)

	cold := newReplica(t, env, &ring, keys, checkRate, audit, "--warmup-timeout", "0")
	var warmArgs []string // the defaults, unless COLDSTART_WARMUP gives --warmup-timeout
	if d := os.Getenv("COLDSTART_WARMUP"); d != "" {
		warmArgs = []string{"--warmup-timeout", d}
	}
	warm := newReplica(t, env, &ring, keys, checkRate, audit, warmArgs...)
	t.Logf("cold start, %d valid keys, load %.0f Check/s round robin (each key every %.1f s), --store-read-rate 500 (burst 100):",
		n, checkRate, float64(n)/checkRate)
	t.Logf("  without warm-up (--warmup-timeout 0): %s", cold)
	label := "(defaults)"
	if warmArgs != nil {
		label = "(" + strings.Join(warmArgs, " ") + ")"
	}
	t.Logf("  with warm-up %-24s %s", label+":", warm)
	for _, r := range []replicaRun{cold, warm} {
		if r.load.other > 0 {
			t.Errorf("%d answers that were neither allow, 503 nor 429 (first: %s)", r.load.other, r.load.firstOther)
		}
	}
	// "No denials" means something only if every key was asked for. (The
	// cold replica may fall short: its misses wait on Vault.)
	if warm.load.total() < int64(n) {
		t.Errorf("the load sent the warmed replica %d Checks, want at least one per key (%d): the machine is too slow for %.0f Check/s",
			warm.load.total(), n, checkRate)
	}
	if warm.load.unavailable != 0 || warm.load.limited != 0 {
		t.Errorf("with the warm-up, the new replica answered valid keys %d × 503 and %d × 429 after it reported SERVING; want 0",
			warm.load.unavailable, warm.load.limited)
	}
	// A read that outlasted --lookup-timeout on a loaded machine is tried
	// again (Vault logs both): at least one read per key.
	if warm.keyReads < n || warm.slotReads != vault.HotSlots {
		t.Errorf("the warm-up read %d records and %d slots, want the %d keys of the working set and the %d slots", warm.keyReads, warm.slotReads, n, vault.HotSlots)
	}
	if cold.load.unavailable+cold.load.limited == 0 {
		t.Errorf("without the warm-up no valid key was denied: the load is too light to show anything")
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// issueColdKeys creates n active keys straight in Vault (16 at a time: the
// CLI, one process per key, would take minutes), each with the request
// that carries it.
func issueColdKeys(t *testing.T, env envMap, n int, ring *keyring) []coldKey {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Addr, cfg.Token, cfg.BasePath, cfg.Timeout = env["VAULT_ADDR"], env["VAULT_TOKEN"], env["KEYGATE_VAULT_BASE_PATH"], 10*time.Second
	store, err := vault.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	format, _ := policy.NewFormat(policy.DefaultPrefix)
	hasher, _ := policy.NewHasher(policy.AlgSHA256, policy.Peppers{})
	keys := make([]coldKey, n)
	var wg sync.WaitGroup
	var failed atomic.Int32
	next := atomic.Int64{}
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && failed.Load() == 0; i = next.Add(1) - 1 {
				raw, id, err := format.Generate()
				if err == nil {
					rec := &policy.Record{Hash: hasher.Hash(raw).String(), Tenant: "acme", Status: policy.StatusActive}
					err = store.Create(context.Background(), id, rec)
				}
				if err != nil {
					failed.Add(1)
					t.Errorf("creating key %d: %v", i, err)
					return
				}
				f := checkFlags{method: "GET", path: "/orders", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: raw}
				req, err := f.request(nil)
				if err != nil {
					failed.Add(1)
					t.Errorf("request: %v", err)
					return
				}
				keys[i] = coldKey{id: id, raw: raw, req: req}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	for _, k := range keys {
		ring.add(created{ID: k.id, Key: k.raw})
	}
	return keys
}

// preload sends every key to s once from 16 workers, again for those not
// allowed (at most 5 passes), so that A is warm before its steady load: at
// thousands of cold misses a second without a read cap, a loaded machine's
// Vault answers past --lookup-timeout and nothing gets cached.
func preload(t *testing.T, s *server, keys []coldKey) {
	t.Helper()
	pending := keys
	for pass := 0; len(pending) > 0; pass++ {
		if pass == 5 {
			t.Fatalf("replica A: %d keys still not allowed after %d passes", len(pending), pass)
		}
		var mu sync.Mutex
		var failed []coldKey
		next := make(chan coldKey)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for k := range next {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					resp, err := s.client.Check(ctx, k.req)
					cancel()
					if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
						mu.Lock()
						failed = append(failed, k)
						mu.Unlock()
					}
				}
			})
		}
		for _, k := range pending {
			next <- k
		}
		close(next)
		wg.Wait()
		pending = failed
	}
}

// waitHotKeys waits until the hot-key slots hold n ids.
func waitHotKeys(t *testing.T, env envMap, n int) {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Addr, cfg.Token, cfg.BasePath, cfg.Timeout = env["VAULT_ADDR"], env["VAULT_TOKEN"], env["KEYGATE_VAULT_BASE_PATH"], 10*time.Second
	store, err := vault.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) { // 32 reads a poll
		ids, err := store.HotKeys(context.Background(), time.Now().Add(-time.Hour))
		if err == nil && len(ids) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica A did not record the %d keys it serves in the hot keys within 90 s: %d ids (%v)", n, len(ids), err)
		}
	}
}

// replicaRun is what one new replica did.
type replicaRun struct {
	ready               time.Duration // from start to SERVING
	keyReads, slotReads int           // Vault reads from start to SERVING
	load                coldStats     // its answers after SERVING
}

func (r replicaRun) String() string {
	return fmt.Sprintf("SERVING after %.1f s (%d record and %d slot reads before); then of %d Checks of valid keys in %.1f s (%.0f Check/s): "+
		"%d × 503 store_unavailable (%.1f%%), %d × 429 caller_rate_limited, %d allowed",
		r.ready.Seconds(), r.keyReads, r.slotReads, r.load.total(), r.load.took.Seconds(), float64(r.load.total())/r.load.took.Seconds(),
		r.load.unavailable, 100*float64(r.load.unavailable)/float64(max(r.load.total(), 1)), r.load.limited, r.load.allowed)
}

// newReplica starts a replica with args (default --store-read-rate),
// waits until it reports SERVING, sends it every key coldRounds times at
// checkRate from then on, and stops it.
func newReplica(t *testing.T, env envMap, ring *keyring, keys []coldKey, checkRate float64, audit *auditReadCounter, args ...string) replicaRun {
	t.Helper()
	start := time.Now()
	// No key-use write-back: its flush at shutdown (one write per key
	// used) is not what is measured here.
	b := startServe(t, env, ring.all, append([]string{"--log-level", "info", "--usage-interval", "0"}, args...)...)
	var r replicaRun
	for !b.serving() {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("new replica not SERVING within 2 minutes:\n%s", redact(b.logs.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ready := time.Now()
	r.ready = ready.Sub(start)
	load := startColdLoad(b, keys, checkRate)
	time.Sleep(time.Duration(float64(coldRounds*len(keys)) / checkRate * float64(time.Second)))
	r.load = load.stop()
	b.stop(t, ring.all)
	r.keyReads, r.slotReads = audit.between(t, start, ready)
	return r
}

// auditReadCounter counts the reads of key records and hot-key slots under
// base that Vault's audit log (file) has, by the time Vault logged them.
type auditReadCounter struct{ file, base string }

// between counts the reads logged from start to end (the audit device
// writes a request line and a response line per request: requests are
// counted). Only lines naming base are decoded.
func (a *auditReadCounter) between(t *testing.T, start, end time.Time) (keys, slots int) {
	t.Helper()
	f, err := os.Open(a.file)
	if err != nil {
		t.Fatalf("open audit log: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	base := []byte(a.base + "/")
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), base) || !bytes.Contains(sc.Bytes(), []byte(`"type":"request"`)) {
			continue
		}
		var line struct {
			Time    time.Time `json:"time"`
			Request struct {
				Operation string `json:"operation"`
				Path      string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Request.Operation != "read" || line.Time.Before(start) || line.Time.After(end) {
			continue
		}
		switch {
		case strings.Contains(line.Request.Path, a.base+"/keys/"):
			keys++
		case strings.Contains(line.Request.Path, a.base+"/hot/"):
			slots++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read audit log: %v", err)
	}
	return keys, slots
}

// coldLoad sends Checks of keys, round robin, at a fixed rate from
// coldWorkers workers, until stopped.
type coldLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	allowed, unavailable, limited, other atomic.Int64
	firstOther                           atomic.Value // string
}

// coldStats are a load's answers.
type coldStats struct {
	allowed, unavailable, limited, other int64
	firstOther                           string
	took                                 time.Duration
}

func (s coldStats) total() int64 { return s.allowed + s.unavailable + s.limited + s.other }

func startColdLoad(s *server, keys []coldKey, checkRate float64) *coldLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &coldLoad{cancel: cancel, start: time.Now()}
	lim := rate.NewLimiter(rate.Limit(checkRate), max(1, int(checkRate/100)))
	var next atomic.Int64
	for range coldWorkers {
		l.wg.Go(func() {
			for lim.Wait(ctx) == nil {
				k := keys[int((next.Add(1)-1)%int64(len(keys)))]
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				resp, err := s.client.Check(cctx, k.req)
				ccancel()
				if ctx.Err() != nil {
					return
				}
				l.count(resp, err, k.id)
			}
		})
	}
	return l
}

func (l *coldLoad) count(resp *authv3.CheckResponse, err error, keyID string) {
	switch {
	case err == nil && codes.Code(resp.GetStatus().GetCode()) == codes.OK:
		l.allowed.Add(1)
	case err == nil && resp.GetStatus().GetMessage() == "store_unavailable":
		l.unavailable.Add(1)
	case err == nil && resp.GetStatus().GetMessage() == "caller_rate_limited":
		// The unknown-key throttle reserves a token before each read of an
		// uncached id and gives it back when the key exists, but the refund
		// (rate.Reservation.CancelAt) restores less the more reservations
		// followed: a burst of valid cold keys can drain the budget.
		l.limited.Add(1)
	default:
		l.other.Add(1)
		what := fmt.Sprintf("key %s: %v", keyID, err)
		if err == nil {
			what = fmt.Sprintf("key %s: %d %s", keyID, resp.GetDeniedResponse().GetStatus().GetCode(), resp.GetStatus().GetMessage())
		}
		l.firstOther.CompareAndSwap(nil, strings.TrimSpace(what))
	}
}

func (l *coldLoad) stop() coldStats {
	l.cancel()
	l.wg.Wait()
	st := coldStats{allowed: l.allowed.Load(), unavailable: l.unavailable.Load(), limited: l.limited.Load(), other: l.other.Load(),
		took: time.Since(l.start)}
	st.firstOther, _ = l.firstOther.Load().(string)
	return st
}
