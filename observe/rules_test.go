package observe

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// ruleFile is a Prometheus rules file holding alerting rules only.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

var severities = map[string]bool{"critical": true, "warning": true, "info": true}

// checkRules decodes a rules file strictly (unknown fields and duplicate
// keys are errors), checks each alert's shape and expression, and returns
// every problem found.
func checkRules(exp map[string]series, data []byte) []error {
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return []error{fmt.Errorf("rules: %w", err)}
	}
	if len(f.Groups) == 0 {
		return []error{errors.New("rules: no groups")}
	}
	var errs []error
	groups, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] || len(g.Rules) == 0 {
			errs = append(errs, fmt.Errorf("group %q: want a unique name and rules", g.Name))
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			if alerts[r.Alert] {
				errs = append(errs, fmt.Errorf("alert %q: defined twice", r.Alert))
			}
			alerts[r.Alert] = true
			errs = append(errs, r.check(exp)...)
		}
	}
	return errs
}

// check checks one alerting rule.
func (r *rule) check(exp map[string]series) []error {
	what := fmt.Sprintf("alert %q", r.Alert)
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(what+": "+format, args...)) }
	if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
		fail("alert and expr are required")
	}
	if d, err := model.ParseDuration(r.For); err != nil || d <= 0 {
		fail("for %q: want a positive duration", r.For)
	}
	if !severities[r.Labels["severity"]] {
		fail("labels.severity %q: want critical, warning or info", r.Labels["severity"])
	}
	for _, a := range []string{"summary", "description"} {
		if strings.TrimSpace(r.Annotations[a]) == "" {
			fail("annotations.%s is required", a)
		}
	}
	for k, v := range r.Annotations {
		if err := parseTemplate(v); err != nil {
			fail("annotations.%s: %v", k, err)
		}
	}
	_, eerrs := checkExpr(exp, what, r.Expr)
	return append(errs, eerrs...)
}

// templateDefs are the variables Prometheus defines before expanding an
// annotation.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// templateFuncs are the annotation template functions the rules may use
// (a subset of Prometheus's); only their names matter for parsing.
var templateFuncs = template.FuncMap{
	"humanize": fmt.Sprint, "humanize1024": fmt.Sprint, "humanizeDuration": fmt.Sprint,
	"humanizePercentage": fmt.Sprint, "humanizeTimestamp": fmt.Sprint, "title": fmt.Sprint,
	"toUpper": fmt.Sprint, "toLower": fmt.Sprint, "reReplaceAll": fmt.Sprint, "match": fmt.Sprint,
}

// parseTemplate parses an annotation as Prometheus would.
func parseTemplate(text string) error {
	_, err := template.New("annotation").Funcs(templateFuncs).Option("missingkey=zero").Parse(templateDefs + text)
	return err
}
