package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Servers compared in every scenario, and the floor answering valid keys
// with keygate's own allow response (the pinned suite: same answer, so the
// difference is keygate's work, not the response's size).
const (
	Keygate           = "keygate"
	Floor             = "floor"
	FloorSameResponse = "floor-same-response"
)

// Run is one bounded load run against one server.
type Run struct {
	Requests    int            `json:"requests"`           // responses received (OK or error)
	OK          int            `json:"ok"`                 // gRPC OK: an allow or a deny decision
	Errors      map[string]int `json:"errors,omitempty"`   // gRPC errors by status/message
	Outcomes    map[string]int `json:"outcomes,omitempty"` // decisions seen (built-in generator only)
	Seconds     float64        `json:"seconds"`            // wall time of the load
	CheckPerSec float64        `json:"check_per_s"`
	Latency     Latency        `json:"latency"`
	ServerCPUS  float64        `json:"server_cpu_s"` // server utime+stime during the run
	ClientCPUS  float64        `json:"client_cpu_s"` // load generator's CPU, 0 if unknown
	ServerCPUUs float64        `json:"server_cpu_us_per_check"`
	ClientCPUUs float64        `json:"client_cpu_us_per_check,omitempty"`
	MaxRSSKiB   int64          `json:"server_max_rss_kib"` // VmHWM (reset before the run when the kernel allows)

	Lat []time.Duration `json:"-"` // raw latencies, kept for merging
}

// Finish fills the derived fields (rates, per-Check CPU, latency summary).
func (r *Run) Finish() {
	if r.Seconds > 0 {
		r.CheckPerSec = round1(float64(r.Requests) / r.Seconds)
	}
	if r.Requests > 0 {
		r.ServerCPUUs = round1(r.ServerCPUS * 1e6 / float64(r.Requests))
		r.ClientCPUUs = round1(r.ClientCPUS * 1e6 / float64(r.Requests))
	}
	r.Latency = Summarize(r.Lat)
}

// Merge aggregates runs of one configuration as if they were one run.
func Merge(runs []Run) Run {
	var t Run
	for _, r := range runs {
		t.Requests += r.Requests
		t.OK += r.OK
		t.Seconds += r.Seconds
		t.ServerCPUS += r.ServerCPUS
		t.ClientCPUS += r.ClientCPUS
		t.MaxRSSKiB = max(t.MaxRSSKiB, r.MaxRSSKiB)
		t.Errors = addCounts(t.Errors, r.Errors)
		t.Outcomes = addCounts(t.Outcomes, r.Outcomes)
		t.Lat = append(t.Lat, r.Lat...)
	}
	t.Finish()
	return t
}

func addCounts(dst, src map[string]int) map[string]int {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]int{}
	}
	for k, v := range maps.All(src) {
		dst[k] += v
	}
	return dst
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// Result is one configuration (scenario, concurrency or rate, server) with
// its interleaved runs and their aggregate.
type Result struct {
	Scenario    string `json:"scenario"`
	Concurrency int    `json:"concurrency"`
	Rate        int    `json:"rate,omitempty"` // fixed Check/s, 0 = as fast as possible
	Server      string `json:"server"`
	LoadGen     string `json:"load_generator"`
	Expect      string `json:"expected_decision"`
	Got         string `json:"preflight_decision"` // one Check sent before the runs
	Runs        []Run  `json:"runs"`
	Total       Run    `json:"total"`
}

// Config names the configuration shared by a keygate result and its floor.
func (r *Result) Config() string {
	if r.Rate > 0 {
		return fmt.Sprintf("%s @%d/s c%d", r.Scenario, r.Rate, r.Concurrency)
	}
	return fmt.Sprintf("%s c%d", r.Scenario, r.Concurrency)
}

// Unexpected counts the OK responses whose decision was not r.Expect. It is
// 0 when the decisions were not tallied (ghz does not decode them).
func (r *Result) Unexpected() int {
	if r.Total.Outcomes == nil || r.Expect == "" {
		return 0
	}
	return r.Total.OK - r.Total.Outcomes[r.Expect]
}

// Comparison is keygate's figures over a reference server's (the floor, or
// the floor with keygate's response) for one configuration.
type Comparison struct {
	Config    string  `json:"config"`
	Against   string  `json:"against"` // Floor or FloorSameResponse; absent in files before it (then Floor)
	CheckRate float64 `json:"check_per_s_ratio"`
	CPU       float64 `json:"cpu_per_check_ratio"`
	P50       float64 `json:"p50_ratio"`
	P99       float64 `json:"p99_ratio"`
	// The medians over the interleaved runs of run i's ratio to the
	// reference's run i (0 without runs to pair): the figure a target
	// is judged on, since one disturbed run moves the totals above.
	CheckRateMedian float64 `json:"check_per_s_ratio_median,omitempty"`
	CPUMedian       float64 `json:"cpu_per_check_ratio_median,omitempty"`
}

// Compare pairs each keygate result with the floor result of the same
// configuration, then with the floor-same-response result where there is
// one.
func Compare(results []Result) []Comparison {
	var out []Comparison
	for _, against := range []string{Floor, FloorSameResponse} {
		refs := map[string]*Result{}
		for i := range results {
			if results[i].Server == against {
				refs[results[i].Config()] = &results[i]
			}
		}
		for _, k := range results {
			ref, ok := refs[k.Config()]
			if k.Server != Keygate || !ok {
				continue
			}
			out = append(out, Comparison{
				Config:    k.Config(),
				Against:   against,
				CheckRate: Ratio(k.Total.CheckPerSec, ref.Total.CheckPerSec),
				CPU:       Ratio(k.Total.ServerCPUUs, ref.Total.ServerCPUUs),
				P50:       Ratio(k.Total.Latency.P50U, ref.Total.Latency.P50U),
				P99:       Ratio(k.Total.Latency.P99U, ref.Total.Latency.P99U),

				CheckRateMedian: pairedMedian(k.Runs, ref.Runs, func(r Run) float64 { return r.CheckPerSec }),
				CPUMedian:       pairedMedian(k.Runs, ref.Runs, func(r Run) float64 { return r.ServerCPUUs }),
			})
		}
	}
	return out
}

// pairedMedian is the median of f(k[i]) / f(ref[i]) over the runs both
// have (runs are interleaved, so run i of each ran side by side), rounded
// as Ratio; 0 if there are none or a reference figure is 0.
func pairedMedian(k, ref []Run, f func(Run) float64) float64 {
	n := min(len(k), len(ref))
	ratios := make([]float64, 0, n)
	for i := range n {
		if f(ref[i]) == 0 {
			return 0
		}
		ratios = append(ratios, f(k[i])/f(ref[i]))
	}
	if n == 0 {
		return 0
	}
	slices.Sort(ratios)
	m := ratios[n/2]
	if n%2 == 0 {
		m = (ratios[n/2-1] + ratios[n/2]) / 2
	}
	return math.Round(m*1000) / 1000
}

// Table formats results as an aligned text table, keygate/floor ratios on
// the keygate rows, then one line per comparison with floor-same-response.
// Its errors column counts non-OK gRPC responses plus, where the decisions
// were tallied, decisions other than the expected one.
func Table(results []Result) string {
	ratios := map[string]Comparison{}
	var same []Comparison
	for _, c := range Compare(results) {
		if c.Against == Floor {
			ratios[c.Config] = c
		} else {
			same = append(same, c)
		}
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tconc\tserver\tload\tCheck/s\tp50 µs\tp99 µs\tp99.9 µs\tCPU µs/Check\tclient µs/Check\tRSS MiB\terrors\t\tkg/floor: Check/s\tCPU\tp99\t")
	for _, r := range results {
		t := r.Total
		name, conc := r.Scenario, fmt.Sprint(r.Concurrency)
		if r.Rate > 0 {
			name = fmt.Sprintf("%s @%d/s", r.Scenario, r.Rate)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%s\t%.1f\t%d\t\t%s\t\n",
			name, conc, r.Server, r.LoadGen, t.CheckPerSec, t.Latency.P50U, t.Latency.P99U, t.Latency.P999U,
			t.ServerCPUUs, optional(t.ClientCPUUs), float64(t.MaxRSSKiB)/1024, t.Requests-t.OK+r.Unexpected(), ratioCells(r, ratios))
	}
	w.Flush()
	if len(same) > 0 {
		b.WriteString("\nkeygate / " + FloorSameResponse + " (the floor answering with keygate's own allow response):\n")
		for _, c := range same {
			fmt.Fprintf(&b, "  %s: Check/s %s  CPU/Check %s  p50 %s  p99 %s  (median of the %s: Check/s %s  CPU/Check %s)\n",
				c.Config, fmtRatio(c.CheckRate), fmtRatio(c.CPU), fmtRatio(c.P50), fmtRatio(c.P99),
				"interleaved runs' ratios", fmtRatio(c.CheckRateMedian), fmtRatio(c.CPUMedian))
		}
	}
	return b.String()
}

func optional(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", f)
}

func ratioCells(r Result, ratios map[string]Comparison) string {
	c, ok := ratios[r.Config()]
	if r.Server != Keygate || !ok {
		return "\t\t"
	}
	return fmtRatio(c.CheckRate) + "\t" + fmtRatio(c.CPU) + "\t" + fmtRatio(c.P99)
}

// fmtRatio prints a ratio, or "-" when the floor's figure was 0 (below the
// CPU clock's resolution).
func fmtRatio(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", f)
}
