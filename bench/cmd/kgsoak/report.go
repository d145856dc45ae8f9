package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/bench"
)

// report is a soak's result, printed and written as JSON.
type report struct {
	Date       time.Time                 `json:"date"`
	Keygate    string                    `json:"keygate_version"`
	Commit     string                    `json:"git_commit"`
	Describe   string                    `json:"git_describe"`
	GoVersion  string                    `json:"go_version"`
	NumCPU     int                       `json:"num_cpu"`
	LoadBefore string                    `json:"loadavg_before"`
	LoadAfter  string                    `json:"loadavg_after"`
	Config     *config                   `json:"config"`
	Seconds    float64                   `json:"seconds"`
	Checks     int                       `json:"checks"` // answered or failed
	Wrong      int                       `json:"wrong_decisions"`
	Examples   []wrongCase               `json:"wrong_examples"`
	Errors     map[string]int            `json:"grpc_errors"`
	LateAllowS map[string]float64        `json:"late_allow_s"` // by label: latest allow after the change took effect
	PerSecond  float64                   `json:"checks_per_s"`
	Latency    bench.Latency             `json:"latency"`
	ByExpect   map[string]map[string]int `json:"by_expectation"`
	ByLabel    map[string]map[string]int `json:"by_key_label"`
	Churn      churnStats                `json:"churn"`
	Samples    []sample                  `json:"samples"`
	NotFlat    []string                  `json:"not_flat"`    // empty: flat
	KeygateLog map[string]int            `json:"keygate_log"` // "LEVEL message" → lines (serve runs with --log-level warn)
}

func (s *soak) report(loadBefore, version string) *report {
	r := s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &report{
		Date: time.Now().UTC(), Keygate: version, GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		LoadBefore: loadBefore, LoadAfter: firstLine(os.ReadFile("/proc/loadavg")), Config: s.cfg,
		Seconds: s.elapsed.Seconds(), Checks: r.n, Wrong: r.wrong, Examples: r.examples, Errors: r.errors,
		PerSecond: float64(r.n) / s.elapsed.Seconds(), Latency: bench.Summarize(r.lat),
		ByExpect: r.byExpect, ByLabel: r.byLabel, Churn: s.churn.stats, Samples: s.samples,
		Commit:     firstLine(exec.Command("git", "rev-parse", "HEAD").Output()),
		Describe:   firstLine(exec.Command("git", "describe", "--always", "--dirty").Output()),
		LateAllowS: map[string]float64{},
	}
	for label, d := range r.late {
		rep.LateAllowS[label] = d.Seconds()
	}
	if w, e, ok := rep.warmEnd(); ok {
		rep.NotFlat = flatness(w, e)
	} else {
		rep.NotFlat = []string{"no warm-up or end sample"}
	}
	return rep
}

// warmEnd returns the warm-up and end samples.
func (rep *report) warmEnd() (warm, end sample, ok bool) {
	var okW, okE bool
	for _, sm := range rep.Samples {
		switch sm.Label {
		case "warm-up":
			warm, okW = sm, true
		case "end":
			end, okE = sm, true
		}
	}
	return warm, end, okW && okE
}

// problems is why the soak failed; empty when it passed.
func (rep *report) problems() []string {
	var p []string
	if rep.Checks == 0 {
		p = append(p, "no Checks were answered")
	}
	if rep.Wrong > 0 {
		p = append(p, fmt.Sprintf("%d wrong decision(s)", rep.Wrong))
	}
	if n := sum(rep.Errors); n > 0 {
		p = append(p, fmt.Sprintf("%d gRPC error(s): %v", n, rep.Errors))
	}
	if rep.Churn.Errors > 0 {
		p = append(p, fmt.Sprintf("%d failed CLI command(s), first: %s", rep.Churn.Errors, rep.Churn.FirstError))
	}
	for _, nf := range rep.NotFlat {
		p = append(p, "not flat: "+nf)
	}
	return p
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (rep *report) print(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "\nkeygate soak: %s, %d CPU, %s; %s at %s; network %s\n", rep.Date.Format(time.RFC3339), rep.NumCPU, rep.GoVersion, rep.Keygate, rep.Describe, c.Network)
	fmt.Fprintf(w, "load average before: %s, after: %s\n", rep.LoadBefore, rep.LoadAfter)
	fmt.Fprintf(w, "%v at %d Check/s (%d connections × %d workers), churn every %v; keygate serve %s\n",
		c.Duration, c.Rate, c.Conns, c.Workers, c.Churn, strings.Join(c.Serve, " "))
	fmt.Fprintf(w, "oracle: revocations and rotations enforced %v after the command, expiries ±%v\n\n", c.Bounds.propagation, c.Bounds.clock)
	l := rep.Latency
	fmt.Fprintf(w, "decisions %d in %.0fs (%.1f Check/s), WRONG %d, gRPC errors %d; latency p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs, max %.0f µs\n",
		rep.Checks, rep.Seconds, rep.PerSecond, rep.Wrong, sum(rep.Errors), l.P50U, l.P99U, l.P999U, l.MaxU)
	for _, label := range slices.Sorted(maps.Keys(rep.LateAllowS)) {
		fmt.Fprintf(w, "  latest allow of a %s key after its change took effect: %+.2fs\n", label, rep.LateAllowS[label])
	}
	for _, e := range rep.Examples {
		fmt.Fprintf(w, "  wrong: key %s (%s) at %.1fs: %s, got %q; %s\n", e.KeyID, e.Label, e.AtS, e.Expect, e.Outcome, e.History)
	}
	fmt.Fprintln(w, "\nby expectation:")
	printCounts(w, rep.ByExpect)
	fmt.Fprintln(w, "by key (label when sent):")
	printCounts(w, rep.ByLabel)
	ch := rep.Churn
	fmt.Fprintf(w, "churn (%d ticks): created %d (%d before the load), created expiring %d (expired %d), revoked %d, rotated %d, CLI errors %d\n\n",
		ch.Ticks, ch.Created, c.Keys, ch.CreatedExpiring, ch.Expired, ch.Revoked, ch.Rotated, ch.Errors)
	rep.printSamples(w)
	fmt.Fprintf(w, "keygate log (warn and above): %d line(s)\n", sum(rep.KeygateLog))
	for _, k := range slices.Sorted(maps.Keys(rep.KeygateLog)) {
		fmt.Fprintf(w, "  %5d  %s\n", rep.KeygateLog[k], k)
	}
}

func printCounts(w io.Writer, m map[string]map[string]int) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var parts []string
		for _, o := range slices.Sorted(maps.Keys(m[k])) {
			parts = append(parts, fmt.Sprintf("%s %d", o, m[k][o]))
		}
		fmt.Fprintf(w, "  %-12s %s\n", k, strings.Join(parts, ", "))
	}
}

func (rep *report) printSamples(w io.Writer) {
	fmt.Fprintln(w, "keygate (after a forced GC):")
	fmt.Fprintf(w, "  %-8s %6s %9s %10s %4s %8s %11s %12s %11s %13s %8s\n",
		"sample", "at s", "heap MiB", "goroutines", "fds", "RSS MiB", "Check/s", "Vault reqs", "key reads", "journal reads", "cached")
	for _, s := range rep.Samples {
		fmt.Fprintf(w, "  %-8s %6.0f %9.1f %10.0f %4.0f %8.1f %11.1f %12.0f %11.0f %13.0f %8.0f\n",
			s.Label, s.AtS, mib(s.HeapInuse), s.Goroutines, s.OpenFDs, mib(s.RSS), s.ClientRateS, s.VaultReqs, s.KeyReads, s.JournalRead, s.CacheKeys)
	}
	if w0, e, ok := rep.warmEnd(); ok {
		fmt.Fprintf(w, "Vault during the load: %.0f key reads (%.1f/s), %.0f journal reads, %.0f failed requests, %.0f cache purges\n",
			e.KeyReads-rep.Samples[0].KeyReads, (e.KeyReads-rep.Samples[0].KeyReads)/e.AtS, e.JournalRead-rep.Samples[0].JournalRead,
			e.VaultFailed, e.Purges)
		verdict := "flat"
		if len(rep.NotFlat) > 0 {
			verdict = "NOT flat: " + strings.Join(rep.NotFlat, "; ")
		}
		if n := (e.CacheKeys - w0.CacheKeys) + (e.CacheNeg - w0.CacheNeg); n > 0 {
			fmt.Fprintf(w, "keygate's caches, warm-up → end: %.0f → %.0f records, %.0f → %.0f unknown ids; heap %+.0f B per added entry\n",
				w0.CacheKeys, e.CacheKeys, w0.CacheNeg, e.CacheNeg, (e.HeapInuse-w0.HeapInuse)/n)
		}
		fmt.Fprintf(w, "resources, warm-up → end: heap %.1f → %.1f MiB, goroutines %.0f → %.0f, fds %.0f → %.0f, RSS %.1f → %.1f MiB: %s\n",
			mib(w0.HeapInuse), mib(e.HeapInuse), w0.Goroutines, e.Goroutines, w0.OpenFDs, e.OpenFDs, mib(w0.RSS), mib(e.RSS), verdict)
	}
}

// write saves the report as <out>/<timestamp>.json and <out>/latest.json.
func (rep *report) write(out string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	stamp := rep.Date.Format("20060102T150405Z")
	for _, name := range []string{stamp + ".json", "latest.json"} {
		if err := os.WriteFile(filepath.Join(out, name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	progress("wrote %s/{%s,latest}.json", out, stamp)
	return nil
}
