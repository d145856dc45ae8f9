package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

// harness holds one benchmark's state.
type harness struct {
	cfg      *config
	tmp      string // keys, requests, logs; removed at the end
	protoset string
	results  []bench.Result
	reads    *vaultReads
	pinning  *pinning   // nil unless the pinned suite ran
	ghzSame  *responses // the ghz suite's floor-same-response (cached-allow); nil unless it ran
	notes    []string

	loadStart string // /proc/loadavg before the first run
}

func (h *harness) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.notes = append(h.notes, msg)
	fmt.Fprintln(os.Stderr, "kgbench: note:", msg)
}

func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kgbench: "+format+"\n", args...)
}

// scenario is one CheckRequest sent to keygate and to the floor.
type scenario struct {
	name       string
	req        bench.Request
	file       string // encoded request, for ghz -B
	expKeygate string // expected decision
	expFloor   string
}

// fileScenarios issues the keys (file store) and writes the requests.
func (h *harness) fileScenarios(ctx context.Context, store string) ([]scenario, string, error) {
	valid, err := createKey(ctx, h.cfg.keygate, store, nil, "--scopes", "orders:read,orders:write", "--header", "x-plan=gold")
	if err != nil {
		return nil, "", err
	}
	// A well-formed key from another store: right format and checksum, unknown here.
	unknown, err := createKey(ctx, h.cfg.keygate, "file:"+filepath.Join(h.tmp, "other-store.yaml"), nil)
	if err != nil {
		return nil, "", err
	}
	legacy := h.cfg.LegacyHdrs
	ss := []scenario{
		{"cached-allow", bench.Request{Key: valid.key, Scopes: "orders:read", LegacyHeaders: legacy}, "", "allow", "allow"},
		{"deny-scope", bench.Request{Key: valid.key, Scopes: "orders:admin", LegacyHeaders: legacy}, "", "deny 403 scope_denied", "allow"},
		{"malformed", bench.Request{Key: corrupt(valid.key), Scopes: "orders:read", LegacyHeaders: legacy}, "", "deny 401 malformed_key", "deny 401"},
		{"unknown", bench.Request{Key: unknown.key, Scopes: "orders:read", LegacyHeaders: legacy}, "", "deny 401 unknown_key", "deny 401"},
	}
	for i := range ss {
		b, err := ss[i].req.Marshal()
		if err != nil {
			return nil, "", err
		}
		ss[i].file = filepath.Join(h.tmp, "req-"+ss[i].name+".bin")
		if err := os.WriteFile(ss[i].file, bench.GhzFile(b), 0o600); err != nil {
			return nil, "", err
		}
		if !h.cfg.UseGhz {
			continue
		}
		if err := h.verifyGhzPayload(ctx, ss[i].file, b); err != nil {
			return nil, "", fmt.Errorf("%s: %w", ss[i].name, err)
		}
	}
	return ss, valid.key, nil
}

// corrupt changes the key's last checksum character, so it is malformed.
func corrupt(key string) string {
	last := key[len(key)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return key[:len(key)-1] + string(repl)
}

func writeKeyFile(path string, keys []string) error {
	return os.WriteFile(path, []byte(strings.Join(keys, "\n")+"\n"), 0o600)
}

// preflight sends the scenario's request once to each server and records
// the decision next to the expected one.
func (h *harness) preflight(ctx context.Context, s scenario, kg, fl *bench.Result, kgAddr, flAddr string) error {
	b, err := s.req.Marshal()
	if err != nil {
		return err
	}
	for _, x := range []struct {
		r    *bench.Result
		addr string
	}{{kg, kgAddr}, {fl, flAddr}} {
		if x.r.Got, err = checkOnce(ctx, x.addr, b); err != nil {
			return fmt.Errorf("%s %s: %w", s.name, x.r.Server, err)
		}
		if x.r.Got != x.r.Expect {
			h.note("%s: %s answered %q, expected %q", s.name, x.r.Server, x.r.Got, x.r.Expect)
		}
	}
	return nil
}

// ghzSuite runs every file-store scenario at every concurrency: warm-up,
// then keygate and floor interleaved (A B A B).
// The first scenario (cached-allow) also runs against same, the floor
// answering with keygate's own allow response.
func (h *harness) ghzSuite(ctx context.Context, ss []scenario, kg, fl, same *proc.Server) error {
	for i, s := range ss {
		for _, c := range h.cfg.Concurrency {
			k := bench.Result{Scenario: s.name, Concurrency: c, Server: bench.Keygate, LoadGen: "ghz", Expect: s.expKeygate}
			f := bench.Result{Scenario: s.name, Concurrency: c, Server: bench.Floor, LoadGen: "ghz", Expect: s.expFloor}
			if err := h.preflight(ctx, s, &k, &f, kg.Addr, fl.Addr); err != nil {
				return err
			}
			pairs := []serverResult{{kg, &k}, {fl, &f}}
			sr := bench.Result{Scenario: s.name, Concurrency: c, Server: bench.FloorSameResponse, LoadGen: "ghz", Expect: s.expKeygate}
			if i == 0 && same != nil {
				req, err := s.req.Marshal()
				if err != nil {
					return err
				}
				if sr.Got, err = checkOnce(ctx, same.Addr, req); err != nil {
					return fmt.Errorf("%s %s: %w", sr.Config(), sr.Server, err)
				}
				if sr.Got != sr.Expect {
					return fmt.Errorf("%s: %s answered %q, expected %q", sr.Config(), sr.Server, sr.Got, sr.Expect)
				}
				pairs = append(pairs, serverResult{same, &sr})
			}
			run := ghzRun{reqFile: s.file, conc: c, count: h.cfg.Count, dur: h.cfg.Duration}
			if err := h.interleave(ctx, run, k.Config(), pairs, true); err != nil {
				return err
			}
			for _, p := range pairs {
				h.results = append(h.results, *p.res)
			}
		}
	}
	return nil
}

// serverResult is a server under test and where its runs are gathered.
type serverResult struct {
	srv *proc.Server
	res *bench.Result
}

// interleave warms every server up (unless warm is false), then runs them
// in turn (keygate, floor, ...) cfg.Reps times each.
func (h *harness) interleave(ctx context.Context, run ghzRun, label string, pairs []serverResult, warm bool) error {
	if warm {
		for _, p := range pairs {
			w := run
			w.target, w.dur = p.srv, h.cfg.Warmup
			if _, err := h.runGhz(ctx, w); err != nil {
				return fmt.Errorf("%s warm-up %s: %w", label, p.res.Server, err)
			}
		}
	}
	for rep := range h.cfg.Reps {
		for _, p := range pairs {
			r := run
			r.target = p.srv
			got, err := h.runGhz(ctx, r)
			if err != nil {
				return fmt.Errorf("%s %s: %w", label, p.res.Server, err)
			}
			h.progress("%-28s %-19s rep %d: %8.0f Check/s  p99 %6.0f µs  CPU %5.1f µs/Check  errors %d",
				label, p.res.Server, rep+1, got.CheckPerSec, got.Latency.P99U, got.ServerCPUUs, got.Requests-got.OK)
			p.res.Runs = append(p.res.Runs, got)
		}
	}
	for _, p := range pairs {
		r := p.res
		r.Total = bench.Merge(r.Runs)
		for i := range r.Runs {
			r.Runs[i].Lat = nil // merged into Total; free the memory
		}
	}
	return nil
}

// rateSuite runs cached-allow at a fixed rate, interleaved.
func (h *harness) rateSuite(ctx context.Context, s scenario, kg, fl *proc.Server) error {
	if h.cfg.Rate == 0 {
		return nil
	}
	c := h.cfg.RateConc
	k := bench.Result{Scenario: s.name, Concurrency: c, Rate: h.cfg.Rate, Server: bench.Keygate, LoadGen: "ghz", Expect: s.expKeygate, Got: "allow"}
	f := bench.Result{Scenario: s.name, Concurrency: c, Rate: h.cfg.Rate, Server: bench.Floor, LoadGen: "ghz", Expect: s.expFloor, Got: "allow"}
	n := int(float64(h.cfg.Rate) * h.cfg.RateDuration.Seconds())
	run := ghzRun{reqFile: s.file, conc: c, rate: h.cfg.Rate, count: n, dur: h.cfg.RateDuration * 3 / 2}
	if err := h.interleave(ctx, run, k.Config(), []serverResult{{kg, &k}, {fl, &f}}, false); err != nil {
		return err
	}
	h.results = append(h.results, k, f)
	return nil
}
