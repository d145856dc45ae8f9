package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Microsecond)
	}
	var thousand []time.Duration
	for i := 1; i <= 1000; i++ {
		thousand = append(thousand, time.Duration(i))
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one value", []time.Duration{7}, 50, 7},
		{"p50 of 1..100", hundred, 50, 50 * time.Microsecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Microsecond},
		{"p99.9 of 1..100 is the max", hundred, 99.9, 100 * time.Microsecond},
		{"p100", hundred, 100, 100 * time.Microsecond},
		{"tiny p is the min", hundred, 0.001, time.Microsecond},
		{"p99.9 of 1..1000", thousand, 99.9, 999},
		{"p99 of 1..1000", thousand, 99, 990},
		{"p50 of two", []time.Duration{1, 2}, 50, 1},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: Percentile(p=%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	// Unsorted input: Summarize sorts it.
	lat := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := Summarize(lat)
	want := Latency{Count: 4, MeanU: 2500, P50U: 2000, P90U: 4000, P99U: 4000, P999U: 4000, MaxU: 4000}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Latency{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", Summarize(nil))
	}
}

func TestMergeAndCompare(t *testing.T) {
	run := func(n int, secs, cpu float64, lat time.Duration) Run {
		r := Run{Requests: n, OK: n, Seconds: secs, ServerCPUS: cpu}
		for range n {
			r.Lat = append(r.Lat, lat)
		}
		r.Finish()
		return r
	}
	k := Result{Scenario: "s", Concurrency: 16, Server: Keygate, LoadGen: "ghz"}
	k.Runs = []Run{run(100, 1, 0.002, time.Millisecond), run(300, 1, 0.004, 3*time.Millisecond)}
	k.Total = Merge(k.Runs)
	f := Result{Scenario: "s", Concurrency: 16, Server: Floor, LoadGen: "ghz"}
	f.Runs = []Run{run(400, 1, 0.004, time.Millisecond)}
	f.Total = Merge(f.Runs)

	if k.Total.Requests != 400 || k.Total.CheckPerSec != 200 || k.Total.ServerCPUUs != 15 {
		t.Errorf("merged keygate run = %+v, want 400 requests, 200 Check/s, 15 µs/Check", k.Total)
	}
	if k.Total.Latency.P50U != 3000 || k.Total.Latency.P99U != 3000 {
		t.Errorf("merged latency = %+v, want p50 = p99 = 3000 µs", k.Total.Latency)
	}
	got := Compare([]Result{k, f})
	// Medians: only run 0 pairs (the floor has one run): 100/400 Check/s, 20/10 µs.
	want := Comparison{Config: "s c16", Against: Floor, CheckRate: 0.5, CPU: 1.5, P50: 3, P99: 3, CheckRateMedian: 0.25, CPUMedian: 2}
	if len(got) != 1 || got[0] != want {
		t.Errorf("Compare = %+v, want [%+v]", got, want)
	}
}

func TestCompareSameResponse(t *testing.T) {
	total := func(rate, cpu, p50, p99 float64) Run {
		return Run{CheckPerSec: rate, ServerCPUUs: cpu, Latency: Latency{P50U: p50, P99U: p99}}
	}
	results := []Result{
		{Scenario: "cached-allow 1cpu", Concurrency: 16, Server: Keygate, Total: total(1100, 34, 500, 1000)},
		{Scenario: "cached-allow 1cpu", Concurrency: 16, Server: Floor, Total: total(1000, 40, 400, 800)},
		{Scenario: "cached-allow 1cpu", Concurrency: 16, Server: FloorSameResponse, Total: total(880, 50, 625, 2000)},
		{Scenario: "cached-allow 1cpu", Concurrency: 64, Server: Keygate, Total: total(1000, 30, 1000, 3000)},
		{Scenario: "cached-allow 1cpu", Concurrency: 64, Server: Floor, Total: total(1000, 30, 1000, 3000)},
		{Scenario: "cached-allow", Concurrency: 16, Server: FloorSameResponse, Total: total(1, 1, 1, 1)}, // no keygate row: no comparison
	}
	got := Compare(results)
	want := []Comparison{
		{Config: "cached-allow 1cpu c16", Against: Floor, CheckRate: 1.1, CPU: 0.85, P50: 1.25, P99: 1.25},
		{Config: "cached-allow 1cpu c64", Against: Floor, CheckRate: 1, CPU: 1, P50: 1, P99: 1},
		{Config: "cached-allow 1cpu c16", Against: FloorSameResponse, CheckRate: 1.25, CPU: 0.68, P50: 0.8, P99: 0.5},
	}
	if len(got) != len(want) {
		t.Fatalf("Compare = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Compare[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestPairedMedian: run i is paired with run i; the median of an even
// count is the mean of the middle two; a zero reference figure (below the
// CPU clock's resolution) or no pairs gives 0, as Ratio does.
func TestPairedMedian(t *testing.T) {
	runs := func(rates ...float64) []Run {
		var out []Run
		for _, r := range rates {
			out = append(out, Run{CheckPerSec: r})
		}
		return out
	}
	rate := func(r Run) float64 { return r.CheckPerSec }
	tests := []struct {
		name   string
		k, ref []Run
		want   float64
	}{
		{"odd", runs(110, 300, 90), runs(100, 100, 100), 1.1},             // 1.1, 3, 0.9
		{"even", runs(110, 300, 90, 120), runs(100, 100, 100, 100), 1.15}, // 0.9 1.1 1.2 3
		{"paired by index, not sorted first", runs(200, 100), runs(100, 200), 1.25},
		{"extra runs ignored", runs(110, 120, 5), runs(100, 100), 1.15},
		{"zero reference", runs(110, 120), runs(100, 0), 0},
		{"no pairs", runs(110), nil, 0},
	}
	for _, tt := range tests {
		if got := pairedMedian(tt.k, tt.ref, rate); got != tt.want {
			t.Errorf("%s: pairedMedian = %v, want %v", tt.name, got, tt.want)
		}
	}
}
