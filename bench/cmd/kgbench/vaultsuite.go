package main

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

// vaultReads is what reached Vault for two request floods.
type vaultReads struct {
	NewKeyChecks   int       `json:"new_key_checks"`      // concurrent Checks of one new key
	NewKeyReads    int       `json:"new_key_vault_reads"` // reads of its record; expected 1
	NewKeyRun      bench.Run `json:"new_key_run"`
	Malformed      int       `json:"malformed_keys"`        // distinct malformed keys, one Check each
	MalformedReads int       `json:"malformed_vault_reads"` // reads of any key record; expected 0
	MalformedRun   bench.Run `json:"malformed_run"`
}

// vaultSuite: cold misses (unique keys, each sent once) against keygate
// on a real Vault, beside the floor; then the Vault-read counts.
func (h *harness) vaultSuite(ctx context.Context) error {
	v, err := proc.StartVault(ctx, h.cfg.vault, h.tmp)
	if err != nil {
		return err
	}
	defer v.Stop()
	h.progress("Vault dev server on %s; creating %d keys with `keygate keys create`", v.Addr, h.cfg.ColdKeys)
	t0 := time.Now()
	keys, err := createKeys(ctx, h.cfg.keygate, "vault", v.Env(), h.cfg.ColdKeys, 4, "--scopes", "orders:read,orders:write", "--header", "x-plan=gold")
	if err != nil {
		return err
	}
	h.progress("created %d keys in %.1fs", len(keys), time.Since(t0).Seconds())
	raw := make([]string, len(keys))
	for i, k := range keys {
		raw[i] = k.key
	}
	keyFile := filepath.Join(h.tmp, "floor-cold-keys.txt")
	if err := writeKeyFile(keyFile, raw); err != nil {
		return err
	}
	fl, err := proc.StartServer(ctx, h.tmp, "floor-cold", nil, h.cfg.floor, "--addr", "--keys", keyFile)
	if err != nil {
		return err
	}
	defer fl.Stop()
	tmpl, err := newTemplate(bench.Request{Scopes: "orders:read", LegacyHeaders: h.cfg.LegacyHdrs}, len(raw[0]))
	if err != nil {
		return err
	}
	req := func(i int) []byte { return tmpl.with(raw[i]) }
	for _, c := range h.cfg.Concurrency {
		if err := h.coldConfig(ctx, v, fl, c, len(raw), req); err != nil {
			return err
		}
	}
	return h.readsTest(ctx, v, tmpl, raw[0][:len(raw[0])-50])
}

// coldConfig runs keygate (restarted before each run, so its cache is
// empty) and the floor alternately, each sending every key once.
func (h *harness) coldConfig(ctx context.Context, v *proc.Vault, fl *proc.Server, conc, n int, req func(int) []byte) error {
	k := bench.Result{Scenario: "cold-miss", Concurrency: conc, Server: bench.Keygate, LoadGen: "built-in", Expect: "allow"}
	f := bench.Result{Scenario: "cold-miss", Concurrency: conc, Server: bench.Floor, LoadGen: "built-in", Expect: "allow"}
	empty := func(int) []byte { return nil } // missing_key: warms the process up without touching the keys
	for rep := range h.cfg.Reps {
		kg, err := proc.StartServer(ctx, h.tmp, "keygate-vault", v.Env(), h.cfg.keygate, "--grpc-addr",
			"serve", "--store", "vault", "--store-read-rate", "-1", "--log-level", "warn")
		if err != nil {
			return err
		}
		for _, x := range []struct {
			srv *proc.Server
			res *bench.Result
		}{{kg, &k}, {fl, &f}} {
			if _, err := h.runBuiltin(ctx, load{target: x.srv, conc: conc, n: n, req: empty, timeout: time.Minute}); err != nil {
				kg.Stop()
				return err
			}
			run, err := h.runBuiltin(ctx, load{target: x.srv, conc: conc, n: n, req: req, timeout: 2 * time.Minute})
			if err != nil {
				kg.Stop()
				return err
			}
			h.progress("%-28s %-7s rep %d: %8.0f Check/s  p99 %6.0f µs  CPU %5.1f µs/Check  outcomes %v errors %v",
				k.Config(), x.res.Server, rep+1, run.CheckPerSec, run.Latency.P99U, run.ServerCPUUs, run.Outcomes, run.Errors)
			x.res.Runs = append(x.res.Runs, run)
		}
		kg.Stop()
	}
	for _, r := range []*bench.Result{&k, &f} {
		r.Total = bench.Merge(r.Runs)
		r.Got = majority(r.Total.Outcomes)
		for i := range r.Runs {
			r.Runs[i].Lat = nil
		}
		if r.Total.Outcomes[r.Expect] != r.Total.Requests {
			h.note("cold-miss c%d %s: outcomes %v, errors %v (expected all %q)", conc, r.Server, r.Total.Outcomes, r.Total.Errors, r.Expect)
		}
	}
	h.results = append(h.results, k, f)
	return nil
}

func majority(m map[string]int) string {
	best, n := "", -1
	for k, v := range m {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best
}

// readsTest counts Vault reads (audit log) caused by many concurrent
// Checks of one new key, and by a flood of distinct malformed keys.
func (h *harness) readsTest(ctx context.Context, v *proc.Vault, tmpl *template, prefix string) error {
	audit := filepath.Join(h.tmp, "vault-audit.log")
	if err := enableAudit(ctx, v, audit); err != nil {
		return err
	}
	kg, err := proc.StartServer(ctx, h.tmp, "keygate-vault-reads", v.Env(), h.cfg.keygate, "--grpc-addr", "serve", "--store", "vault", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer kg.Stop()
	nk, err := createKey(ctx, h.cfg.keygate, "vault", v.Env(), "--scopes", "orders:read")
	if err != nil {
		return err
	}
	r := &vaultReads{NewKeyChecks: h.cfg.NewKeyChecks, Malformed: h.cfg.Malformed}
	one := tmpl.with(nk.key)
	off := fileSize(audit)
	r.NewKeyRun, err = h.runBuiltin(ctx, load{target: kg, conc: r.NewKeyChecks, n: r.NewKeyChecks, req: func(int) []byte { return one }, timeout: time.Minute})
	if err != nil {
		return err
	}
	if _, r.NewKeyReads, err = auditReads(audit, off, nk.id); err != nil {
		return err
	}
	h.progress("%d concurrent Checks of one new key: %d Vault read(s) of it; outcomes %v", r.NewKeyChecks, r.NewKeyReads, r.NewKeyRun.Outcomes)
	off = fileSize(audit)
	conc := h.cfg.Concurrency[len(h.cfg.Concurrency)-1]
	bad := func(i int) []byte { return tmpl.with(malformedKey(prefix, i)) }
	r.MalformedRun, err = h.runBuiltin(ctx, load{target: kg, conc: conc, n: r.Malformed, req: bad, timeout: 3 * time.Minute})
	if err != nil {
		return err
	}
	if r.MalformedReads, _, err = auditReads(audit, off, ""); err != nil {
		return err
	}
	h.progress("%d distinct malformed keys: %d Vault read(s); outcomes %v", r.Malformed, r.MalformedReads, r.MalformedRun.Outcomes)
	r.NewKeyRun.Lat, r.MalformedRun.Lat = nil, nil
	h.reads = r
	return nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// malformedKey is the i-th key with the right prefix, length and alphabet
// but a random checksum (wrong but for a ~1e-11 chance).
func malformedKey(prefix string, i int) string {
	rng := rand.New(rand.NewPCG(uint64(i), 0x6b657967617465))
	b := []byte(prefix)
	for range 50 {
		b = append(b, base62[rng.IntN(len(base62))])
	}
	return string(b)
}
