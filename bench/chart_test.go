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
