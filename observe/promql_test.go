package observe

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// grafanaVars stand in for Grafana's interval variables so that dashboard
// queries parse as PromQL. Template variables such as $job only occur
// inside label values, where PromQL takes them literally.
var grafanaVars = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range}", "1h", "$__range", "1h",
)

var promql = parser.NewParser(parser.Options{})

// literalAlternation is a regexp matcher value that is just a|b|c.
var literalAlternation = regexp.MustCompile(`^[a-z0-9_]+(\|[a-z0-9_]+)*$`)

// checkExpr parses expr with the PromQL parser and checks that every metric
// it selects is one keygate exports, every label it matches on or groups by
// exists, and every value it matches for a closed label is one keygate
// emits. what names the expression in errors.
func checkExpr(exp map[string]series, what, expr string) (parser.Expr, []error) {
	e, err := promql.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", what, err)}
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{what}, args...)...))
	}
	known := maps.Clone(targetLabels)
	for _, vs := range selectors(e) {
		s, ok := exp[vs.Name]
		switch {
		case vs.Name == "":
			fail("selector %s has no metric name", vs)
			continue
		case !ok:
			fail("metric %q is not exported by keygate", vs.Name)
			continue
		}
		for l := range s {
			known[l] = true
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel {
				errs = append(errs, checkMatcher(s, what, vs.Name, m)...)
			}
		}
	}
	for _, l := range groupingLabels(e) {
		if !known[l] {
			fail("groups or matches by label %q, which none of its metrics has", l)
		}
	}
	return e, errs
}

// checkMatcher checks one label matcher of a selector of metric name.
func checkMatcher(s series, what, name string, m *labels.Matcher) []error {
	if targetLabels[m.Name] {
		return nil
	}
	values, ok := s[m.Name]
	if !ok {
		return []error{fmt.Errorf("%s: %s has no label %q", what, name, m.Name)}
	}
	if !completeLabels[m.Name] {
		return nil
	}
	want := []string{m.Value}
	if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
		if !literalAlternation.MatchString(m.Value) {
			return nil // a real regexp: nothing to compare
		}
		want = strings.Split(m.Value, "|")
	}
	var errs []error
	for _, v := range want {
		if !values[v] {
			errs = append(errs, fmt.Errorf("%s: %s{%s=%q}: keygate never exports that value (it has %v)",
				what, name, m.Name, v, slices.Sorted(maps.Keys(values))))
		}
	}
	return errs
}

// selectors returns every vector selector in e, including those inside
// range selectors and subqueries.
func selectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// groupingLabels returns the labels of every by (...) and on (...) in e.
func groupingLabels(e parser.Expr) []string {
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.AggregateExpr:
			if !n.Without {
				out = append(out, n.Grouping...)
			}
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil && vm.On {
				out = append(out, vm.MatchingLabels...)
			}
		}
		return nil
	})
	return out
}

// checkTemplated checks that every selector of a dashboard query filters by
// the dashboard's job and instance variables.
func checkTemplated(what string, e parser.Expr) []error {
	var errs []error
	for _, vs := range selectors(e) {
		for l, want := range map[string]string{"job": "$job", "instance": "$instance"} {
			if !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
				return m.Name == l && m.Type == labels.MatchRegexp && m.Value == want
			}) {
				errs = append(errs, fmt.Errorf("%s: %s does not filter by %s=~%q", what, vs.Name, l, want))
			}
		}
	}
	return errs
}
