package observe

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// alertTestDir holds one `promtool test rules` file per alert in
// alerts.yaml, named after it (KeygateVaultErrors.yaml), testing that alert
// only.
const alertTestDir = "testdata/alerts"

// unitFile is the part of a promtool rule test file these tests read.
type unitFile struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Name  string `yaml:"name"`
		Cases []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// alertTestFile is the unit test file for the alert named name.
func alertTestFile(name string) string { return filepath.Join(alertTestDir, name+".yaml") }

// alertRules returns every alerting rule in alerts.yaml with the name of
// its group.
func alertRules(t *testing.T) (rules []rule, groups []string) {
	t.Helper()
	var f ruleFile
	if err := yaml.UnmarshalStrict(read(t, rulesFile), &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			rules = append(rules, r)
			groups = append(groups, g.Name)
		}
	}
	return rules, groups
}

// TestAlertTestsCoverEveryAlert: every alert in alerts.yaml has its test
// file, which loads alerts.yaml, tests that alert only, and has at least one
// case where it fires and one where it stays silent; and every test file
// belongs to an alert. So a new alert without tests fails the build, and a
// silent case cannot pass by naming an alert that does not exist (promtool
// would find no alerts for it, as expected).
func TestAlertTestsCoverEveryAlert(t *testing.T) {
	rules, _ := alertRules(t)
	var names []string
	for _, r := range rules {
		names = append(names, r.Alert)
		var f unitFile
		if err := yaml.Unmarshal(read(t, alertTestFile(r.Alert)), &f); err != nil {
			t.Errorf("%s: %v", alertTestFile(r.Alert), err)
			continue
		}
		if want := filepath.Join("..", "..", rulesFile); !slices.Equal(f.RuleFiles, []string{want}) {
			t.Errorf("%s: rule_files %v, want [%s]", alertTestFile(r.Alert), f.RuleFiles, want)
		}
		if f.EvaluationInterval != "1m" { // the for mutants move by evalInterval
			t.Errorf("%s: evaluation_interval %q, want 1m", alertTestFile(r.Alert), f.EvaluationInterval)
		}
		firing, silent := 0, 0
		for _, g := range f.Tests {
			for _, c := range g.Cases {
				if c.Alertname != r.Alert {
					t.Errorf("%s (%s, %s): tests %q; each file tests its own alert only",
						alertTestFile(r.Alert), g.Name, c.EvalTime, c.Alertname)
				}
				if len(c.ExpAlerts) > 0 {
					firing++
				} else {
					silent++
				}
			}
		}
		if firing == 0 || silent == 0 {
			t.Errorf("%s: %d cases where %s fires and %d where it is silent, want at least one of each",
				alertTestFile(r.Alert), firing, r.Alert, silent)
		}
	}
	files, err := filepath.Glob(filepath.Join(alertTestDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if !slices.Contains(names, strings.TrimSuffix(filepath.Base(file), ".yaml")) {
			t.Errorf("%s tests no alert in %s", file, rulesFile)
		}
	}
}

// TestAlertsUnit runs every alert's unit tests with the real promtool: each
// alert fires on series that should fire, only once its for has elapsed,
// with exactly its labels and rendered annotations, and stays silent on
// healthy series, at its threshold and once the bad samples have left its
// window.
func TestAlertsUnit(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	files, err := filepath.Glob(filepath.Join(alertTestDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in %s (%v)", alertTestDir, err)
	}
	out, err := runPromtool(t, bin, append([]string{"test", "rules"}, files...)...)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
