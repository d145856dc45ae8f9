package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sample is keygate's resources and counters at one moment, from its
// /metrics right after a forced GC (the admin endpoint's
// /debug/pprof/heap?gc=1), so the heap figure is the live heap.
type sample struct {
	AtS         float64 `json:"at_s"` // seconds into the load
	Label       string  `json:"label"`
	HeapInuse   float64 `json:"heap_inuse_bytes"`
	Goroutines  float64 `json:"goroutines"`
	OpenFDs     float64 `json:"open_fds"`
	RSS         float64 `json:"rss_bytes"`
	VaultReqs   float64 `json:"vault_requests"`        // keygate_vault_requests_total, every operation and class
	VaultFailed float64 `json:"vault_requests_failed"` // of those, not ok or not_found
	KeyReads    float64 `json:"vault_key_reads"`       // operation lookup (Check misses and refreshes)
	JournalRead float64 `json:"vault_journal_reads"`
	Checks      float64 `json:"checks"` // keygate_checks_total
	CacheKeys   float64 `json:"cache_records"`
	CacheNeg    float64 `json:"cache_unknown"`
	Purges      float64 `json:"journal_cache_purges"`
	ClientSeen  int     `json:"client_checks"` // Checks the soak had sent and seen answered
	ClientRateS float64 `json:"client_checks_per_s"`
}

// scraper reads samples from keygate's admin and metrics endpoints.
type scraper struct {
	metrics, admin string // http://host:port
	client         *http.Client
}

func (s scraper) get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return resp.Body, nil
}

// sample forces a GC in keygate, then reads its metrics.
func (s scraper) sample(ctx context.Context) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := s.get(ctx, s.admin+"/debug/pprof/heap?gc=1")
	if err != nil {
		return sample{}, fmt.Errorf("forced GC: %w", err)
	}
	io.Copy(io.Discard, body)
	body.Close()
	body, err = s.get(ctx, s.metrics+"/metrics")
	if err != nil {
		return sample{}, err
	}
	defer body.Close()
	m, err := parseMetrics(body)
	if err != nil {
		return sample{}, err
	}
	return sample{
		HeapInuse: m.sum("go_memstats_heap_inuse_bytes", ""), Goroutines: m.sum("go_goroutines", ""),
		OpenFDs: m.sum("process_open_fds", ""), RSS: m.sum("process_resident_memory_bytes", ""),
		VaultReqs: m.sum(vaultReqs, ""), KeyReads: m.sum(vaultReqs, `operation="lookup"`), JournalRead: m.sum(vaultReqs, `operation="journal"`),
		VaultFailed: m.sum(vaultReqs, "") - m.sum(vaultReqs, `class="ok"`) - m.sum(vaultReqs, `class="not_found"`),
		Checks:      m.sum("keygate_checks_total", ""), Purges: m.sum("keygate_journal_cache_purges_total", ""),
		CacheKeys: m.sum("keygate_cache_entries", `kind="records"`), CacheNeg: m.sum("keygate_cache_entries", `kind="unknown"`),
	}, nil
}

const vaultReqs = "keygate_vault_requests_total"

// metrics is a Prometheus text exposition: per metric name, its series'
// label strings and values.
type metrics map[string][]series

type series struct {
	labels string
	value  float64
}

// sum adds the values of name's series whose labels contain match ("" for all).
func (m metrics) sum(name, match string) float64 {
	var t float64
	for _, s := range m[name] {
		if strings.Contains(s.labels, match) {
			t += s.value
		}
	}
	return t
}

func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(line[:sp], "{")
		m[name] = append(m[name], series{labels: labels, value: v})
	}
	return m, sc.Err()
}

// Tolerances of the "flat" verdict, end against the end of warm-up.
const (
	flatHeapRatio  = 1.5
	flatRSSRatio   = 1.5
	flatGoroutines = 20
	flatFDs        = 10
)

// flatness compares the end sample with the warm-up one; it returns the
// problems (none: flat).
func flatness(warm, end sample) []string {
	var bad []string
	if end.HeapInuse > warm.HeapInuse*flatHeapRatio {
		bad = append(bad, fmt.Sprintf("heap in use %.1f → %.1f MiB (> %.1f×)", mib(warm.HeapInuse), mib(end.HeapInuse), flatHeapRatio))
	}
	if end.RSS > warm.RSS*flatRSSRatio {
		bad = append(bad, fmt.Sprintf("RSS %.1f → %.1f MiB (> %.1f×)", mib(warm.RSS), mib(end.RSS), flatRSSRatio))
	}
	if end.Goroutines > warm.Goroutines+flatGoroutines {
		bad = append(bad, fmt.Sprintf("goroutines %.0f → %.0f (> +%d)", warm.Goroutines, end.Goroutines, flatGoroutines))
	}
	if end.OpenFDs > warm.OpenFDs+flatFDs {
		bad = append(bad, fmt.Sprintf("open fds %.0f → %.0f (> +%d)", warm.OpenFDs, end.OpenFDs, flatFDs))
	}
	return bad
}

func mib(b float64) float64 { return b / (1 << 20) }
