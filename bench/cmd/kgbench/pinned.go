package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

// pinnedScenario names the pinned suite's rows: cached-allow with the
// server alone on one CPU and the built-in generator on the others.
const pinnedScenario = "cached-allow 1cpu"

// pinning records where the pinned suite ran and what the servers answered.
type pinning struct {
	ServerCPUs string `json:"server_cpus"`         // every server under test, started under taskset -c
	LoadCPUs   string `json:"load_generator_cpus"` // every thread of kgbench during the suite
	responses

	srvCPUs, loadCPUs []int
	taskset           string
}

// responses are the allow answers' sizes where keygate, the floor and the
// floor answering with keygate's response (floor-same-response) run side
// by side, and whether keygate's and the copy's are byte-identical (else
// proto.Equal only).
type responses struct {
	KeygateBytes    int  `json:"keygate_allow_response_bytes"`
	SameBytes       int  `json:"floor_same_response_bytes"`
	SameIdentical   bool `json:"floor_same_response_byte_identical"`
	FloorAllowBytes int  `json:"floor_allow_response_bytes"`
}

// skipped is a reason the machine cannot run the pinned suite (too few
// CPUs, no taskset, affinity refused): a note, not a failure.
type skipped struct{ error }

// pinnedSuite runs cached-allow against keygate, the floor and the floor
// answering with keygate's own allow response, each alone on one CPU while
// the built-in generator runs on the others, interleaved per rep. On a
// shared machine ghz competes with the server for the same cores and its
// response decoding dominates; issue 17's goal is measured one core each.
func (h *harness) pinnedSuite(ctx context.Context, fs *fileStore) error {
	err := h.pinned(ctx, fs)
	if s := (skipped{}); errors.As(err, &s) {
		h.note("pinned suite (cached-allow, one core each) skipped: %v", s.error)
		return nil
	}
	return err
}

func (h *harness) pinned(ctx context.Context, fs *fileStore) error {
	p, err := pinPlan()
	if err != nil {
		return err
	}
	req, err := fs.ss[0].req.Marshal() // cached-allow
	if err != nil {
		return err
	}
	targets, err := h.startPinned(ctx, fs, req, p)
	for _, srv := range targets {
		defer srv.Stop()
	}
	if err != nil {
		return err
	}
	restore, err := pinSelf(p.loadCPUs)
	if err != nil {
		return skipped{err}
	}
	defer restore()
	h.pinning = p
	h.progress("pinned: servers on CPU %s (taskset), kgbench on CPU %s; keygate %s, floor %s, floor-same-response %s",
		p.ServerCPUs, p.LoadCPUs, targets[0].Addr, targets[1].Addr, targets[2].Addr)
	for _, c := range h.cfg.Concurrency {
		if err := h.pinnedConfig(ctx, c, targets, req, p.loadCPUs); err != nil {
			return err
		}
	}
	return nil
}

// pinPlan splits the CPUs kgbench may use: the lowest for the servers, the
// rest for the load generator. It needs taskset (util-linux).
func pinPlan() (*pinning, error) {
	allowed, err := proc.Affinity(0)
	if err != nil {
		return nil, skipped{err}
	}
	p := &pinning{}
	if p.srvCPUs, p.loadCPUs, err = proc.SplitCPUs(allowed); err != nil {
		return nil, skipped{err}
	}
	if p.taskset, err = exec.LookPath("taskset"); err != nil {
		return nil, skipped{err}
	}
	p.ServerCPUs, p.LoadCPUs = proc.CPUList(p.srvCPUs), proc.CPUList(p.loadCPUs)
	return p, nil
}

// startPinned starts keygate (the ghz suite's flags), the floor and the
// floor answering with keygate's allow response, each under taskset on the
// server CPU, and checks the last answers as keygate does. It returns the
// servers it started, in pinnedServers' order, also on error (to stop).
func (h *harness) startPinned(ctx context.Context, fs *fileStore, req []byte, p *pinning) ([]*proc.Server, error) {
	var started []*proc.Server
	start := func(name, addrFlag string, args ...string) error {
		srv, err := proc.StartServer(ctx, h.tmp, name, nil, p.taskset, addrFlag, append([]string{"-c", p.ServerCPUs}, args...)...)
		if err != nil {
			return err
		}
		started = append(started, srv)
		if _, err := proc.Pin(srv.PID(), p.srvCPUs); err != nil { // taskset pinned it at exec; this covers every thread regardless
			return skipped{err}
		}
		return nil
	}
	if err := start("keygate-1cpu", "--grpc-addr", h.cfg.keygate, "serve", "--store", fs.store, "--log-level", "warn"); err != nil {
		return started, err
	}
	if err := start("floor-1cpu", "--addr", h.cfg.floor, "--keys", fs.keyFile); err != nil {
		return started, err
	}
	respFile := filepath.Join(h.tmp, "keygate-allow.json")
	if err := saveAllowResponse(ctx, started[0].Addr, req, respFile, &p.responses); err != nil {
		return started, err
	}
	if err := start("floor-same-response-1cpu", "--addr", h.cfg.floor, "--keys", fs.keyFile, "--response", respFile); err != nil {
		return started, err
	}
	return started, checkSameResponse(ctx, started[0].Addr, started[2].Addr, started[1].Addr, req, &p.responses)
}

// pinSelf moves every thread of kgbench to cpus and sets GOMAXPROCS to
// match; restore puts back the affinity and GOMAXPROCS it had.
func pinSelf(cpus []int) (restore func(), err error) {
	orig, err := proc.Affinity(0)
	if err != nil {
		return nil, err
	}
	if _, err := proc.Pin(os.Getpid(), cpus); err != nil {
		proc.Pin(os.Getpid(), orig)
		return nil, err
	}
	prev := runtime.GOMAXPROCS(len(cpus))
	return func() {
		proc.Pin(os.Getpid(), orig)
		runtime.GOMAXPROCS(prev)
	}, nil
}

// rawCheck sends one encoded request and returns the encoded response.
func rawCheck(ctx context.Context, addr string, req []byte) ([]byte, error) {
	conn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, checkPath, req, &resp); err != nil {
		return nil, fmt.Errorf("check %s: %w", addr, err)
	}
	return resp, nil
}

func decode(b []byte) (*authv3.CheckResponse, error) {
	r := &authv3.CheckResponse{}
	if err := proto.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("decode CheckResponse: %w", err)
	}
	return r, nil
}

// saveAllowResponse asks keygate twice for req's answer (the second from its
// cache), requires an allow that does not vary between Checks, and writes
// it in protojson for the floor's --response.
func saveAllowResponse(ctx context.Context, addr string, req []byte, path string, p *responses) error {
	var resps [2]*authv3.CheckResponse
	var raw []byte
	for i := range resps {
		b, err := rawCheck(ctx, addr, req)
		if err != nil {
			return err
		}
		if resps[i], err = decode(b); err != nil {
			return err
		}
		raw = b
	}
	if got := outcome(raw); got != "allow" {
		return fmt.Errorf("keygate answered the cached-allow request with %q", got)
	}
	if !proto.Equal(resps[0], resps[1]) {
		return errors.New("keygate's allow response differs between two Checks of the same request: no fixed response to give the floor")
	}
	p.KeygateBytes = len(raw)
	js, err := protojson.Marshal(resps[1])
	if err != nil {
		return err
	}
	return os.WriteFile(path, js, 0o600)
}

// checkSameResponse requires floor-same-response's answer to equal
// keygate's (proto.Equal) and records the answers' sizes and whether they
// are byte-identical (they need not be: keygate writes its pre-encoded
// parts in another field order than generated code does).
func checkSameResponse(ctx context.Context, kgAddr, sameAddr, flAddr string, req []byte, p *responses) error {
	var raw [3][]byte
	for i, addr := range []string{kgAddr, sameAddr, flAddr} {
		var err error
		if raw[i], err = rawCheck(ctx, addr, req); err != nil {
			return err
		}
	}
	kg, err1 := decode(raw[0])
	same, err2 := decode(raw[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if !proto.Equal(kg, same) {
		return fmt.Errorf("floor-same-response's answer (%d bytes) is not keygate's (%d bytes): the comparison would not be like for like", len(raw[1]), len(raw[0]))
	}
	p.SameBytes, p.SameIdentical, p.FloorAllowBytes = len(raw[1]), bytes.Equal(raw[0], raw[1]), len(raw[2])
	return nil
}

// pinnedServers names the servers startPinned returns, in its order.
var pinnedServers = []string{bench.Keygate, bench.Floor, bench.FloorSameResponse}

// pinnedConfig runs one concurrency: a preflight Check and a warm-up run
// per server (not reported), then the servers in turn, BENCH_REPS times.
func (h *harness) pinnedConfig(ctx context.Context, conc int, targets []*proc.Server, req []byte, loadCPUs []int) error {
	results, err := h.pinnedPreflight(ctx, conc, targets, req)
	if err != nil {
		return err
	}
	one := func(int) []byte { return req }
	for rep := range h.cfg.Reps + 1 { // rep 0 is the warm-up
		for i, srv := range targets {
			if _, err := proc.Pin(os.Getpid(), loadCPUs); err != nil { // threads started since the last run
				return err
			}
			dur := h.cfg.Duration
			if rep == 0 {
				dur = h.cfg.Warmup
			}
			r := &results[i]
			run, err := h.runBuiltin(ctx, load{target: srv, conc: conc, n: h.cfg.Count, req: one, dur: dur, timeout: dur + time.Minute})
			if err != nil {
				return fmt.Errorf("%s %s: %w", r.Config(), r.Server, err)
			}
			if rep == 0 {
				continue
			}
			h.progress("%-28s %-19s rep %d: %8.0f Check/s  p99 %6.0f µs  CPU %5.1f µs/Check  outcomes %v errors %v",
				r.Config(), r.Server, rep, run.CheckPerSec, run.Latency.P99U, run.ServerCPUUs, run.Outcomes, run.Errors)
			r.Runs = append(r.Runs, run)
		}
	}
	for i := range results {
		r := &results[i]
		r.Total = bench.Merge(r.Runs)
		for j := range r.Runs {
			r.Runs[j].Lat = nil // merged into Total; free the memory
		}
		if r.Total.Outcomes[r.Expect] != r.Total.Requests {
			h.note("%s %s: outcomes %v, errors %v (expected all %q)", r.Config(), r.Server, r.Total.Outcomes, r.Total.Errors, r.Expect)
		}
	}
	h.results = append(h.results, results...)
	return nil
}

// pinnedPreflight sends the request once to each server and records the
// decision next to the expected one (allow, for all three).
func (h *harness) pinnedPreflight(ctx context.Context, conc int, targets []*proc.Server, req []byte) ([]bench.Result, error) {
	results := make([]bench.Result, len(targets))
	for i, srv := range pinnedServers {
		r := &results[i]
		*r = bench.Result{Scenario: pinnedScenario, Concurrency: conc, Server: srv, LoadGen: "built-in", Expect: "allow"}
		var err error
		if r.Got, err = checkOnce(ctx, targets[i].Addr, req); err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.Config(), srv, err)
		}
		if r.Got != r.Expect {
			h.note("%s: %s answered %q, expected %q", r.Config(), srv, r.Got, r.Expect)
		}
	}
	return results, nil
}
