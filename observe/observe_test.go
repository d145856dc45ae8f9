package observe

import (
	"errors"
	"os"
	"strings"
	"testing"
)

const (
	dashboardFile = "grafana-dashboard.json"
	rulesFile     = "alerts.yaml"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDashboard: the dashboard is well-formed, and every query parses as
// PromQL, filters by $job and $instance, and uses only metrics, labels and
// label values keygate exports.
func TestDashboard(t *testing.T) {
	for _, err := range checkDashboard(exported(t), read(t, dashboardFile)) {
		t.Error(err)
	}
}

// TestAlertRules: the rules file holds well-formed alerting rules, each
// with a for, a severity, a summary and a description, and every
// expression uses only metrics, labels and label values keygate exports.
func TestAlertRules(t *testing.T) {
	for _, err := range checkRules(exported(t), read(t, rulesFile)) {
		t.Error(err)
	}
}

// mistakes are edits to a real file that the checks must reject, each
// with a part of the complaint it must cause.
var mistakes = []struct {
	name, file, old, new, want string
}{
	{"misspelled metric in a rule", rulesFile,
		"keygate_cache_events_total", "keygate_cache_event_total", `metric "keygate_cache_event_total" is not exported`},
	{"histogram without suffix in a rule", rulesFile,
		"keygate_check_duration_seconds_bucket", "keygate_check_duration_seconds", `"keygate_check_duration_seconds" is not exported`},
	{"misspelled reason code", rulesFile,
		`reason="store_unavailable"`, `reason="store_unavailible"`, `never exports that value`},
	{"misspelled class in a regexp", rulesFile,
		`class!~"ok|not_found|invalid_record"`, `class!~"ok|notfound|invalid_record"`, `class="notfound"`},
	{"misspelled eviction cause", rulesFile,
		`cause="size"`, `cause="full"`, `never exports that value`},
	{"label the metric lacks", rulesFile,
		`event="stale"`, `evnt="stale"`, `has no label "evnt"`},
	{"grouping by a missing label", rulesFile,
		"sum by (job, class)", "sum by (job, klass)", `label "klass"`},
	{"PromQL syntax error", rulesFile,
		"keygate_ready == 0", "keygate_ready == ", "parse error"},
	{"unknown rule field", rulesFile,
		"annotations:", "anotations:", "field anotations not found"},
	{"missing severity", rulesFile,
		"severity: critical", "priority: critical", "labels.severity"},
	{"bad for", rulesFile,
		"for: 5m", "for: 5 minutes", "want a positive duration"},
	{"broken annotation template", rulesFile,
		"{{ $labels.class }})", "{{ $labels.class )", "annotations.summary"},
	{"broken JSON", dashboardFile,
		`"schemaVersion"`, `"schemaVersion`, "dashboard: invalid character"},
	{"misspelled metric in the dashboard", dashboardFile,
		"keygate_journal_lag_seconds{", "keygate_journal_lag{", `metric "keygate_journal_lag" is not exported`},
	{"query not filtered by instance", dashboardFile,
		`go_goroutines{job=~\"$job\",instance=~\"$instance\"}`, `go_goroutines{job=~\"$job\"}`, `does not filter by instance`},
	{"unknown Grafana variable", dashboardFile,
		"[$__rate_interval]", "[$__rate_intervall]", "bad number or duration"},
	{"variable on another data source", dashboardFile,
		`"uid": "${DS_PROMETHEUS}"`, `"uid": "prometheus"`, `want a query variable "job"`},
}

// TestChecksCatchMistakes: each mistake, made in a copy of a real file,
// fails the checks with the expected complaint.
func TestChecksCatchMistakes(t *testing.T) {
	exp := exported(t)
	for _, tt := range mistakes {
		t.Run(tt.name, func(t *testing.T) {
			data := string(read(t, tt.file))
			if !strings.Contains(data, tt.old) {
				t.Fatalf("%s does not contain %q", tt.file, tt.old)
			}
			broken := []byte(strings.Replace(data, tt.old, tt.new, 1))
			check := checkRules
			if tt.file == dashboardFile {
				check = checkDashboard
			}
			errs := check(exp, broken)
			if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("errors %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestDashboardDataSource: panels must use the DS_PROMETHEUS variable, not
// a data source of the exporter's own Grafana.
func TestDashboardDataSource(t *testing.T) {
	data := strings.ReplaceAll(string(read(t, dashboardFile)), dsUID, "P1809F7CD0C75ACF3")
	err := errors.Join(checkDashboard(exported(t), []byte(data))...)
	if err == nil || !strings.Contains(err.Error(), "datasource is not "+dsUID) {
		t.Errorf("errors %v, want panels on another data source rejected", err)
	}
}
