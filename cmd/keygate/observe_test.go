package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// logAddr waits for s to log msg with an address field and returns it.
func (s *server) logAddr(t *testing.T, msg, field string) string {
	t.Helper()
	re := regexp.MustCompile(`"msg":"` + msg + `","` + field + `":"([^"]+)"`)
	var addr string
	eventually(t, 10*time.Second, msg+" logged", func() bool {
		if m := re.FindStringSubmatch(s.logs.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return "http://" + addr
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestObserve: a burst of mixed decisions yields one parseable audit line
// each, with every field and no key; /metrics counts them under closed
// label sets and holds no key; the admin port reports the cache and the
// configuration without secrets, and serves pprof.
func TestObserve(t *testing.T) {
	var ring keyring
	dir := t.TempDir()
	env := envMap{"KEYGATE_STORE": "file:" + dir + "/keys.yaml", "KEYGATE_VAULT_APPROLE_SECRET_ID": "s3cret-approle-id"}
	ok := ring.add(createKey(t, env, "--tenant", "acme", "--scopes", "orders:read"))
	limited := ring.add(createKey(t, env, "--tenant", "globex", "--rate-limit", "1/hour"))
	auditFile := filepath.Join(dir, "audit.log")
	s := serve(t, env, ring.all, "--audit-log", auditFile, "--metrics-addr", ":0", "--admin-addr", ":0",
		"--metrics-key-requests", "--metrics-max-keys", "1")

	want := map[string]int{}
	send := func(key string, f checkFlags, reason string) {
		if o := s.decide(t, key, f); o.reason != reason {
			t.Fatalf("decision %v, want %s", o, reason)
		}
		want[reason]++
	}
	for range 20 {
		send(ok.Key, checkFlags{path: "/v1/orders?token=" + ok.Key}, "allowed")
		send(ok.Key, checkFlags{context: []string{"keygate.scopes=admin"}}, "scope_denied")
		send(ok.Key[:len(ok.Key)-1], checkFlags{}, "malformed_key")
		send("", checkFlags{}, "missing_key")
	}
	send(limited.Key, checkFlags{}, "allowed")
	send(limited.Key, checkFlags{}, "rate_limited")
	total := 0
	for _, n := range want {
		total += n
	}

	checkAuditFile(t, auditFile, total, want, ring.all())
	metricsURL := s.logAddr(t, "serving metrics", "metrics_addr")
	if !strings.HasPrefix(metricsURL, "http://127.0.0.1:") {
		t.Errorf("--metrics-addr :0 listens on %s, want loopback", metricsURL)
	}
	checkMetrics(t, metricsURL+"/metrics", want, ring.all(), ok.ID)
	admin := s.logAddr(t, "admin endpoint", "admin_addr")
	if !strings.HasPrefix(admin, "http://127.0.0.1:") {
		t.Errorf("--admin-addr :0 listens on %s, want loopback", admin)
	}
	var stats struct {
		Records    int
		ChangeFeed bool // the file store's reports
	}
	if err := json.Unmarshal([]byte(getBody(t, admin+"/v1/cache")), &stats); err != nil || stats.Records != 2 || !stats.ChangeFeed {
		t.Errorf("/v1/cache: %+v %v", stats, err)
	}
	cfg := getBody(t, admin+"/v1/config")
	if strings.Contains(cfg, "s3cret-approle-id") || !strings.Contains(cfg, `"--audit-log": "`+auditFile) ||
		!strings.Contains(cfg, `"KEYGATE_VAULT_APPROLE_SECRET_ID": "(set, redacted)"`) {
		t.Errorf("/v1/config:\n%s", cfg)
	}
	if !strings.Contains(getBody(t, admin+"/debug/pprof/"), "goroutine") {
		t.Error("/debug/pprof/ does not list profiles")
	}
}

var auditFields = []string{"time", "request_id", "key_id", "tenant", "method", "host", "path", "source_ip",
	"decision", "reason", "status", "cache", "latency_us"}

func checkAuditFile(t *testing.T, path string, total int, want map[string]int, keys []string) {
	t.Helper()
	eventually(t, 5*time.Second, "audit lines written", func() bool {
		data, _ := os.ReadFile(path)
		return strings.Count(string(data), "\n") >= total
	})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	got := map[string]int{}
	for sc.Scan() {
		for _, k := range keys {
			if strings.Contains(sc.Text(), k) {
				t.Fatalf("audit line holds a raw key")
			}
		}
		var ln map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ln); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		for _, fld := range auditFields {
			if _, ok := ln[fld]; !ok {
				t.Fatalf("audit line lacks %q: %s", fld, sc.Text())
			}
		}
		if p, _ := ln["path"].(string); strings.Contains(p, "?") {
			t.Errorf("audit path keeps the query: %q", p)
		}
		got[ln["reason"].(string)]++
	}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("audit lines with reason %s: %d, want %d", r, got[r], n)
		}
	}
}

// closedLabels are the label values keygate may export, per label name.
var closedLabels = map[string]*regexp.Regexp{
	"result":    regexp.MustCompile(`^(allowed|denied)$`),
	"reason":    regexp.MustCompile(`^[a-z_]+$`),
	"event":     regexp.MustCompile(`^(hit|negative_hit|miss|stale|eviction)$`),
	"kind":      regexp.MustCompile(`^(records|unknown)$`),
	"operation": regexp.MustCompile(`^[a-z_]+$`),
	"class":     regexp.MustCompile(`^[a-z_]+$`),
	"outcome":   regexp.MustCompile(`^(loaded|unknown|failed|not_tried)$`),
}

func checkMetrics(t *testing.T, url string, want map[string]int, keys []string, keyID string) {
	t.Helper()
	body := getBody(t, url)
	for _, k := range keys {
		if strings.Contains(body, k) {
			t.Fatal("/metrics holds a raw key")
		}
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"keygate_checks_total", "keygate_check_duration_seconds", "keygate_cache_events_total",
		"keygate_cache_entries", "keygate_ready", "keygate_build_info", "keygate_audit_lines_total",
		"keygate_audit_lines_dropped_total", "keygate_journal_lag_seconds", "keygate_change_feed_healthy", "keygate_key_requests_total",
		"grpc_server_handled_total", "go_goroutines", "process_resident_memory_bytes"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if re := closedLabels[l.GetName()]; re != nil && !re.MatchString(l.GetValue()) {
					t.Errorf("%s{%s=%q}: not in the closed set", name, l.GetName(), l.GetValue())
				}
				if name == "keygate_key_requests_total" && l.GetName() == "key_id" && l.GetValue() != keyID && l.GetValue() != "_other" {
					t.Errorf("key_requests beyond the cap of 1: key_id %q", l.GetValue())
				}
			}
			if name == "keygate_checks_total" {
				reason := labelValue(m.GetLabel(), "reason")
				if got := int(m.GetCounter().GetValue()); got != want[reason] {
					t.Errorf("keygate_checks_total{reason=%q} = %d, want %d", reason, got, want[reason])
				}
			}
		}
	}
	if v := families["keygate_ready"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("keygate_ready = %v", v)
	}
}

func labelValue(labels []*dto.LabelPair, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
