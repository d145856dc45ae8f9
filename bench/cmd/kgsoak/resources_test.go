package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const exposition = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 35
go_memstats_heap_inuse_bytes 6.0948224e+06
keygate_vault_requests_total{class="ok",operation="journal"} 146
keygate_vault_requests_total{class="ok",operation="lookup"} 500
keygate_vault_requests_total{class="not_found",operation="lookup"} 40
keygate_vault_requests_total{class="timeout",operation="lookup"} 2
keygate_cache_entries{kind="records"} 114
keygate_cache_entries{kind="unknown"} 9
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, match string
		want        float64
	}{
		{"go_goroutines", "", 35},
		{"go_memstats_heap_inuse_bytes", "", 6094822.4},
		{vaultReqs, "", 688},
		{vaultReqs, `operation="lookup"`, 542},
		{vaultReqs, `class="ok"`, 646},
		{"keygate_cache_entries", `kind="records"`, 114},
		{"process_open_fds", "", 0}, // absent
	} {
		if got := m.sum(c.name, c.match); got != c.want {
			t.Errorf("sum(%s, %q) = %v, want %v", c.name, c.match, got, c.want)
		}
	}
}

func TestFlatness(t *testing.T) {
	warm := sample{HeapInuse: 6 << 20, RSS: 28 << 20, Goroutines: 35, OpenFDs: 20}
	flat := sample{HeapInuse: 8 << 20, RSS: 30 << 20, Goroutines: 55, OpenFDs: 30}
	if bad := flatness(warm, flat); len(bad) != 0 {
		t.Errorf("within tolerance: got %q", bad)
	}
	grown := sample{HeapInuse: 10 << 20, RSS: 43 << 20, Goroutines: 56, OpenFDs: 31}
	bad := flatness(warm, grown)
	for i, want := range []string{"heap", "RSS", "goroutines", "open fds"} {
		if i >= len(bad) || !strings.HasPrefix(bad[i], want) {
			t.Errorf("past tolerance: got %q, want a %s problem at %d", bad, want, i)
		}
	}
}

func TestMarks(t *testing.T) {
	label := func(ms []mark) (out []string) {
		for _, m := range ms {
			out = append(out, m.label)
		}
		return out
	}
	if got := label(marks(time.Minute, 10*time.Second)); !slices.Equal(got, []string{"warm-up", "end"}) {
		t.Errorf("1m soak: %q", got)
	}
	want := []string{"warm-up", "2m0s", "3m0s", "end"}
	if got := label(marks(4*time.Minute, time.Minute)); !slices.Equal(got, want) {
		t.Errorf("4m soak: %q, want %q", got, want)
	}
}
