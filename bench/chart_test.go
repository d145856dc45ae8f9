package bench

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func TestChartIsWellFormedSVG(t *testing.T) {
	var results []Result
	for _, srv := range []string{Keygate, Floor} {
		for _, c := range []int{16, 64} {
			r := Run{Requests: 2, OK: 2, Seconds: 1, ServerCPUS: 0.00005, Lat: []time.Duration{300 * time.Microsecond, 2 * time.Millisecond}}
			r.Finish()
			results = append(results, Result{Scenario: "cached-allow", Concurrency: c, Server: srv, LoadGen: "ghz", Total: r})
		}
	}
	results = append(results, Result{Scenario: "cold-miss", Concurrency: 16, Server: Keygate, LoadGen: "built-in"}) // no data: no bars
	svg := Chart("title <&>", "subtitle", results)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	for _, want := range []string{"cached-allow c16", "cached-allow c64", "cold-miss c16 (built-in)", "keygate p99", "floor p50", "server CPU per Check", "latency (log scale)", "title &lt;&amp;&gt;"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// 2 configurations with data: 4 latency bars and 2 CPU bars each; 6 legend swatches.
	if n := strings.Count(svg, "<rect x="); n != 2*4+2*2+6 {
		t.Errorf("chart has %d rects, want 18", n)
	}
}

func TestTable(t *testing.T) {
	k := Result{Scenario: "malformed", Concurrency: 64, Server: Keygate, LoadGen: "ghz", Total: Run{CheckPerSec: 900, ServerCPUUs: 11, Latency: Latency{P99U: 120}}}
	f := Result{Scenario: "malformed", Concurrency: 64, Server: Floor, LoadGen: "ghz", Total: Run{CheckPerSec: 1000, ServerCPUUs: 10, Latency: Latency{P99U: 100}}}
	out := Table([]Result{k, f})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want header + 2:\n%s", len(lines), out)
	}
	for _, want := range []string{"0.90", "1.10", "1.20"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("keygate row lacks ratio %s:\n%s", want, out)
		}
	}
}

func TestTableSameResponseAndUnexpected(t *testing.T) {
	run := Run{Requests: 10, OK: 9, CheckPerSec: 1000, ServerCPUUs: 10, Latency: Latency{P50U: 100, P99U: 200}}
	k := Result{Scenario: "cached-allow 1cpu", Concurrency: 16, Server: Keygate, LoadGen: "built-in", Expect: "allow", Total: run}
	k.Total.Outcomes = map[string]int{"allow": 7, "deny 401 unknown_key": 2}
	f := Result{Scenario: "cached-allow 1cpu", Concurrency: 16, Server: FloorSameResponse, LoadGen: "built-in", Expect: "allow", Total: run}
	f.Total.CheckPerSec, f.Total.Latency.P50U = 800, 50
	f.Total.Outcomes = map[string]int{"allow": 9}
	out := Table([]Result{k, f})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("table has %d lines, want header + 2 rows + blank + title + 1 comparison:\n%s", len(lines), out)
	}
	// errors: 1 gRPC error, plus 2 unexpected decisions on keygate's row.
	if f := strings.Fields(lines[1]); f[len(f)-1] != "3" {
		t.Errorf("keygate row's errors = %s, want 3 (no floor row, so no kg/floor ratios):\n%s", f[len(f)-1], out)
	}
	if f := strings.Fields(lines[2]); f[len(f)-1] != "1" {
		t.Errorf("floor-same-response row's errors = %s, want 1:\n%s", f[len(f)-1], out)
	}
	want := "cached-allow 1cpu c16: Check/s 1.25  CPU/Check 1.00  p50 2.00  p99 1.00"
	if !strings.Contains(lines[5], want) {
		t.Errorf("comparison line = %q, want it to contain %q", lines[5], want)
	}
}
