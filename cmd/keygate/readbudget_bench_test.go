package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

// readBench are make bench-reads' knobs (KEYGATE_BENCH_READS_*).
type readBench struct {
	Replicas int           `json:"replicas"`
	Keys     int           `json:"keys"`
	Cycle    time.Duration `json:"cycle_ns"`   // each replica Checks every key once per cycle
	Measure  time.Duration `json:"measure_ns"` // counted window per phase, after the warm-up
	Changes  float64       `json:"changes_per_s"`
	MaxAge   time.Duration `json:"max_record_age_ns"` // the after phase's; 0: serve's default
	Phases   []string      `json:"phases"`
	Args     []string      `json:"serve_args"` // added to every phase's
}

func readBenchConfig(t *testing.T) readBench {
	t.Helper()
	b := readBench{Replicas: 10, Keys: 5000, Cycle: 10 * time.Second, Measure: 4 * time.Minute, Changes: 0.5,
		Phases: []string{"before", "after"}}
	for name, into := range map[string]any{"REPLICAS": &b.Replicas, "KEYS": &b.Keys, "CYCLE": &b.Cycle,
		"MEASURE": &b.Measure, "CHANGES": &b.Changes, "MAX_RECORD_AGE": &b.MaxAge, "PHASES": &b.Phases, "SERVE_ARGS": &b.Args} {
		v := os.Getenv("KEYGATE_BENCH_READS_" + name)
		if v == "" {
			continue
		}
		var err error
		switch p := into.(type) {
		case *int:
			*p, err = strconv.Atoi(v)
		case *float64:
			*p, err = strconv.ParseFloat(v, 64)
		case *time.Duration:
			*p, err = time.ParseDuration(v)
		case *[]string:
			*p = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		}
		if err != nil {
			t.Fatalf("KEYGATE_BENCH_READS_%s: %v", name, err)
		}
	}
	if b.Replicas < 1 || b.Keys < 1 || b.Cycle <= 0 || b.Measure <= 0 || b.Changes < 0 || b.Replicas > 100 || b.Keys > 100_000 {
		t.Fatalf("bad knobs: %+v", b)
	}
	return b
}

// phaseResult is one phase's figures, from Vault's audit device.
type phaseResult struct {
	Phase       string        `json:"phase"`
	Args        []string      `json:"serve_args"`
	Period      time.Duration `json:"refresh_period_ns"` // found-ttl (before) or max-record-age (after)
	Warmup      time.Duration `json:"warmup_ns"`
	Seconds     float64       `json:"measured_s"`
	KeyReads    []int         `json:"key_reads_per_replica"`
	JournalRead []int         `json:"journal_reads_per_replica"`
	Checks      int64         `json:"checks"`
	UseEvery    time.Duration `json:"use_interval_ns"` // mean time between two Checks of one key on one replica
	Dropped     int64         `json:"dropped"`         // Checks the load could not send (workers busy)
	NotAllowed  int64         `json:"not_allowed"`
	Errors      int64         `json:"grpc_errors"`
	Changes     int64         `json:"changes"`
}

// TestBenchVaultReads is `make bench-reads`, skipped unless
// KEYGATE_BENCH_READS=1: Replicas × `keygate serve` (in-process, each on its
// own gRPC listener and Vault token) on one real Vault with a file audit
// device; each replica Checks every one of Keys keys once per Cycle, in
// its own order, while the CLI updates a random key Changes times a second
// (journaled). Per phase, with fresh replicas: "before" runs
// --max-record-age 0 (every record re-read every --found-ttl, as before the
// read budget), "after" the defaults. Keys come into use spread over one
// refresh period, and the count starts 1.1 periods + 2 cycles later, so
// refreshes are as spread as after hours of running. Vault reads are
// counted per replica token at the audit device.
func TestBenchVaultReads(t *testing.T) {
	if os.Getenv("KEYGATE_BENCH_READS") != "1" {
		t.Skip("make bench-reads: set KEYGATE_BENCH_READS=1")
	}
	cfg := readBenchConfig(t)
	var ring keyring
	env := vaultEnv(t)
	client := vaulttest.Server(t).Client(t)
	audit := enableAccessorAudit(t, client)
	tokens, accessors := replicaTokens(t, client, env["KEYGATE_VAULT_BASE_PATH"], cfg.Replicas)
	keys, reqs := createBenchKeys(t, env, &ring, cfg.Keys)
	t.Logf("%d keys created; %d replicas; each Checks every key every %s; %.2f changes/s", len(keys), cfg.Replicas, cfg.Cycle, cfg.Changes)

	var results []phaseResult
	for _, phase := range cfg.Phases {
		args := append([]string{"--log-level", "info", "--audit-log", "off", "--usage-interval", "0"}, cfg.Args...)
		period := 30 * time.Second // serve's default --found-ttl
		switch {
		case phase == "before":
			args = append(args, "--max-record-age", "0")
		case phase == "after" && cfg.MaxAge > 0:
			args, period = append(args, "--max-record-age", cfg.MaxAge.String()), cfg.MaxAge
		case phase == "after":
			period = 10 * time.Minute // serve's default --max-record-age
		default:
			t.Fatalf("phase %q: want before or after", phase)
		}
		r := runReadPhase(t, cfg, phase, args, period, env, &ring, tokens, accessors, audit, keys, reqs)
		results = append(results, r)
		t.Logf("%s", r.summary(cfg))
		if r.NotAllowed*100 > r.Checks {
			t.Logf("%s: %d of %d Checks denied (store_unavailable: Vault did not answer within --lookup-timeout): "+
				"Vault is saturated, and the reads counted are what it served, not what the replicas asked for", phase, r.NotAllowed, r.Checks)
		}
	}
	if out := os.Getenv("KEYGATE_BENCH_READS_OUT"); out != "" {
		b, _ := json.MarshalIndent(map[string]any{"config": cfg, "phases": results}, "", "  ")
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "latest.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (r phaseResult) summary(cfg readBench) string {
	var keyTotal, journalTotal, lo, hi int
	lo = int(^uint(0) >> 1)
	for i := range r.KeyReads {
		keyTotal, journalTotal = keyTotal+r.KeyReads[i], journalTotal+r.JournalRead[i]
		lo, hi = min(lo, r.KeyReads[i]), max(hi, r.KeyReads[i])
	}
	n := float64(len(r.KeyReads))
	return fmt.Sprintf("%-6s %v: key reads %.2f/s per replica (replicas %.2f..%.2f), journal reads %.2f/s per replica; "+
		"all replicas %.1f reads/s; %d Checks (%.0f/s: each key every %s per replica), %d dropped, %d not allowed, %d gRPC errors, "+
		"%d changes in %.0fs (warm-up %s)",
		r.Phase, r.Args, float64(keyTotal)/n/r.Seconds, float64(lo)/r.Seconds, float64(hi)/r.Seconds,
		float64(journalTotal)/n/r.Seconds, float64(keyTotal+journalTotal)/r.Seconds,
		r.Checks, float64(r.Checks)/r.Seconds, r.UseEvery.Round(100*time.Millisecond), r.Dropped, r.NotAllowed, r.Errors,
		r.Changes, r.Seconds, r.Warmup.Round(time.Second))
}

// runReadPhase starts the replicas, brings the keys into use over one
// period, warms up, counts over cfg.Measure, and stops the replicas.
func runReadPhase(t *testing.T, cfg readBench, phase string, args []string, period time.Duration, env envMap, ring *keyring,
	tokens, accessors []string, audit *accessorAudit, keys []created, reqs []*authv3.CheckRequest) phaseResult {
	t.Helper()
	servers := make([]*server, cfg.Replicas)
	for i := range servers {
		e := envMap{"VAULT_ADDR": env["VAULT_ADDR"], "VAULT_TOKEN": tokens[i], "KEYGATE_VAULT_BASE_PATH": env["KEYGATE_VAULT_BASE_PATH"]}
		servers[i] = serve(t, e, ring.all, args...)
	}
	r := phaseResult{Phase: phase, Args: args[6:], Period: period, Warmup: period*11/10 + 2*cfg.Cycle} // past the common six
	ctx, cancel := context.WithCancel(context.Background())
	load := startReadLoad(ctx, cfg, servers, reqs, period)
	changes := startChanges(ctx, t, &load.wg, env, keys, cfg.Changes, load.start, period)
	t.Logf("%s: warming up for %s (keys come into use over %s)", phase, r.Warmup, period)
	time.Sleep(time.Until(load.start.Add(r.Warmup)))
	from, checks0, bad0, err0, ch0, drop0 := audit.size(t), load.checks.Load(), load.notAllowed.Load(), load.errors.Load(), changes.Load(), load.dropped.Load()
	t0 := time.Now()
	time.Sleep(cfg.Measure)
	to := audit.size(t)
	r.Seconds = time.Since(t0).Seconds()
	r.Checks, r.NotAllowed = load.checks.Load()-checks0, load.notAllowed.Load()-bad0
	r.Errors, r.Changes, r.Dropped = load.errors.Load()-err0, changes.Load()-ch0, load.dropped.Load()-drop0
	if r.Checks > 0 {
		r.UseEvery = time.Duration(r.Seconds * float64(cfg.Replicas*cfg.Keys) / float64(r.Checks) * float64(time.Second))
	}
	cancel()
	load.wg.Wait()
	for _, s := range servers {
		s.stop(t, ring.all)
	}
	r.KeyReads, r.JournalRead = audit.reads(t, from, to, accessors)
	return r
}

// readLoad Checks every key on every replica once per cycle. Key i comes
// into use at start + ramp×i/len(keys), on every replica alike. Per
// replica a dispatcher hands keys, in the replica's own order, to a pool
// of workers, so a slow Check (a Vault read) does not hold the others up;
// what the pool cannot take is dropped and counted.
type readLoad struct {
	start                               time.Time
	checks, notAllowed, errors, dropped atomic.Int64
	wg                                  sync.WaitGroup
}

// loadTick is how often a dispatcher hands out keys; loadWorkers are the
// Checks in flight per replica at most.
const loadTick, loadWorkers = 20 * time.Millisecond, 16

func startReadLoad(ctx context.Context, cfg readBench, servers []*server, reqs []*authv3.CheckRequest, ramp time.Duration) *readLoad {
	l := &readLoad{start: time.Now()}
	for _, s := range servers {
		next := make(chan int, 4*loadWorkers)
		for range loadWorkers {
			l.wg.Go(func() { l.work(ctx, s, reqs, next) })
		}
		l.wg.Go(func() { l.dispatch(ctx, next, rand.Perm(len(reqs)), cfg.Cycle, ramp) })
	}
	return l
}

// dispatch hands out order (positions into the keys) at len(order) per
// cycle, skipping keys not in use yet; it closes next when ctx ends.
func (l *readLoad) dispatch(ctx context.Context, next chan<- int, order []int, cycle, ramp time.Duration) {
	defer close(next)
	tick := time.NewTicker(loadTick)
	defer tick.Stop()
	perTick := float64(len(order)) * float64(loadTick) / float64(cycle)
	owed, p := 0.0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		inUse := time.Since(l.start)
		for owed += perTick; owed >= 1; owed-- {
			i := order[p]
			p = (p + 1) % len(order)
			if inUse < ramp*time.Duration(i)/time.Duration(len(order)) {
				continue // not in use yet
			}
			select {
			case next <- i:
			default:
				l.dropped.Add(1)
			}
		}
	}
}

func (l *readLoad) work(ctx context.Context, s *server, reqs []*authv3.CheckRequest, next <-chan int) {
	for i := range next {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := s.client.Check(cctx, reqs[i])
		cancel()
		switch {
		case ctx.Err() != nil:
			continue // draining
		case err != nil:
			l.errors.Add(1)
		case toOutcome(resp).status != 200:
			l.notAllowed.Add(1)
		}
		l.checks.Add(1)
	}
}

// startChanges updates a random key in use (journaled) perSecond times a
// second with the CLI, and counts the updates.
func startChanges(ctx context.Context, t *testing.T, wg *sync.WaitGroup, env envMap, keys []created, perSecond float64,
	start time.Time, ramp time.Duration) *atomic.Int64 {
	var n atomic.Int64
	if perSecond <= 0 {
		return &n
	}
	wg.Go(func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			inUse := min(len(keys), 1+int(float64(len(keys))*time.Since(start).Seconds()/ramp.Seconds()))
			k := keys[rand.IntN(inUse)]
			if _, _, err := cli(t, env, "keys", "update", k.ID, "--metadata", "bench="+strconv.FormatInt(n.Load(), 10)); err == nil {
				n.Add(1)
			}
		}
	})
	return &n
}

// createBenchKeys issues n keys with the CLI, 8 at a time, and builds one
// CheckRequest each (as `keygate check` would).
func createBenchKeys(t *testing.T, env envMap, ring *keyring, n int) ([]created, []*authv3.CheckRequest) {
	t.Helper()
	keys := make([]created, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				out, _, err := cli(t, env, "keys", "create", "--json", "--tenant", "bench")
				if err == nil {
					err = json.Unmarshal([]byte(out), &keys[i])
				}
				errs[i] = err
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	reqs := make([]*authv3.CheckRequest, n)
	for i, k := range keys {
		if errs[i] != nil || k.Key == "" {
			t.Fatalf("keys create %d: %v", i, errs[i])
		}
		ring.add(k)
		f := checkFlags{method: "GET", path: "/orders", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: k.Key}
		var err error
		if reqs[i], err = f.request(nil); err != nil {
			t.Fatal(err)
		}
	}
	return keys, reqs
}

// replicaTokens creates one token per replica, allowed to read what
// keygate serve reads, and returns the tokens and their accessors (which
// the audit device logs in clear, see enableAccessorAudit).
func replicaTokens(t *testing.T, client *vaultapi.Client, base string, n int) (tokens, accessors []string) {
	t.Helper()
	policy := "bench-reads-" + base
	rules := fmt.Sprintf("path \"secret/data/%[1]s/keys/*\" { capabilities = [\"read\"] }\n"+
		"path \"secret/data/%[1]s/pepper\" { capabilities = [\"read\"] }\n"+
		"path \"secret/data/%[1]s/journal\" { capabilities = [\"read\"] }\n", base)
	if err := client.Sys().PutPolicy(policy, rules); err != nil {
		t.Fatal(err)
	}
	for range n {
		sec, err := client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "4h"})
		if err != nil || sec == nil || sec.Auth == nil {
			t.Fatalf("create a replica's token: %v", err)
		}
		tokens, accessors = append(tokens, sec.Auth.ClientToken), append(accessors, sec.Auth.Accessor)
	}
	return tokens, accessors
}

// accessorAudit is a file audit device that logs token accessors in clear.
type accessorAudit struct{ path string }

func enableAccessorAudit(t *testing.T, client *vaultapi.Client) *accessorAudit {
	t.Helper()
	a := &accessorAudit{path: filepath.Join(t.TempDir(), "audit.log")}
	if err := client.Sys().EnableAuditWithOptions("kgbenchreads", &vaultapi.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": a.path, "hmac_accessor": "false"},
	}); err != nil {
		t.Fatalf("enable audit device: %v", err)
	}
	t.Cleanup(func() { _ = client.Sys().DisableAudit("kgbenchreads") })
	return a
}

func (a *accessorAudit) size(t *testing.T) int64 {
	t.Helper()
	st, err := os.Stat(a.path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// reads counts, per accessor, the read requests on key records and on the
// journal logged between byte offsets from and to.
func (a *accessorAudit) reads(t *testing.T, from, to int64, accessors []string) (keyReads, journalReads []int) {
	t.Helper()
	f, err := os.Open(a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idx := map[string]int{}
	for i, acc := range accessors {
		idx[acc] = i
	}
	keyReads, journalReads = make([]int, len(accessors)), make([]int, len(accessors))
	sc := bufio.NewScanner(io.NewSectionReader(f, from, to-from))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var line struct {
			Type string `json:"type"`
			Auth struct {
				Accessor string `json:"accessor"`
			} `json:"auth"`
			Request struct {
				Operation string `json:"operation"`
				Path      string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Type != "request" || line.Request.Operation != "read" {
			continue
		}
		i, ok := idx[line.Auth.Accessor]
		switch {
		case !ok:
		case strings.Contains(line.Request.Path, "/keys/"):
			keyReads[i]++
		case strings.HasSuffix(line.Request.Path, "/journal"):
			journalReads[i]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keyReads, journalReads
}
