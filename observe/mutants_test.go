package observe

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v2"
)

// writeRuleTest writes r, alone in a rules file, and a copy of its unit
// test file into dir laid out as observe/ is, and returns the copy's path.
func writeRuleTest(t *testing.T, dir, group string, r rule) string {
	t.Helper()
	data, err := yaml.Marshal(ruleFile{Groups: []ruleGroup{{Name: group, Rules: []rule{r}}}})
	if err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, alertTestFile(r.Alert))
	if err := os.MkdirAll(filepath.Dir(test), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{filepath.Join(dir, rulesFile): data, test: read(t, alertTestFile(r.Alert))} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return test
}

// mutantBatch is how many mutants one promtool run tests: a run per
// mutant would spend most of its time starting promtool, one run per alert
// would leave a core idle behind the slowest alert.
const mutantBatch = 8

// TestAlertTestsCatchMutants: for each alert, every mutant of it (a
// comparison flipped or made inclusive, a threshold or other number moved
// across the tested boundary, a label matcher negated, a condition of an
// `and` dropped, absent negated, its for a minute shorter or longer; see
// mutants) fails that alert's unit tests. Each alert's tests run against
// that alert alone, unmutated (as the PromQL printer writes it back) in
// every batch to show they pass, so a mutant's failure is its own.
func TestAlertTestsCatchMutants(t *testing.T) {
	bin := promtool(t)
	rules, groups := alertRules(t)
	for i, r := range rules {
		muts, err := mutants(r)
		if err != nil {
			t.Fatalf("%s: %v", r.Alert, err)
		}
		if len(muts) < 2 {
			t.Errorf("%s: no mutants", r.Alert)
		}
		for b := 1; b < len(muts); b += mutantBatch {
			batch := append([]mutant{muts[0]}, muts[b:min(b+mutantBatch, len(muts))]...)
			t.Run(fmt.Sprintf("%s/%d", r.Alert, b/mutantBatch), func(t *testing.T) {
				t.Parallel()
				checkMutants(t, bin, groups[i], batch)
			})
		}
	}
}

// checkMutants runs the unit tests of batch's alert against each rule in
// batch, in one promtool run, and checks that they pass for the unmutated
// rule and fail, on an alert test, for each mutant.
func checkMutants(t *testing.T, bin, group string, batch []mutant) {
	dir := t.TempDir()
	args := []string{"test", "rules"}
	for j, m := range batch {
		args = append(args, writeRuleTest(t, filepath.Join(dir, strconv.Itoa(j)), group, m.rule))
	}
	out, _ := runPromtool(t, bin, args...)
	// promtool reports each file as "Unit Testing:  FILE", then SUCCESS or
	// FAILED: and the failures.
	reports := strings.Split(out, "Unit Testing:  ")[1:]
	if len(reports) != len(batch) {
		t.Fatalf("promtool reported on %d files, want %d:\n%s", len(reports), len(batch), out)
	}
	for j, m := range batch {
		report := reports[j]
		if !strings.HasPrefix(report, args[2+j]+"\n") {
			t.Fatalf("report %d is not on %s:\n%s", j, args[2+j], report)
		}
		passed := strings.Contains(report, "  SUCCESS\n")
		switch {
		case m.name == "" && !passed:
			t.Fatalf("unmutated, as printed:\n%s", report)
		case m.name == "":
		case passed:
			t.Errorf("mutant %s survives: its tests still pass with\n  expr: %s\n  for: %s", m, m.rule.Expr, m.rule.For)
		case !strings.Contains(report, "alertname: "+m.rule.Alert):
			t.Errorf("mutant %s failed for another reason than its tests:\n%s", m, report)
		}
	}
}

// mutant is an alerting rule with one change; name says which ("" for the
// rule as printed, unchanged).
type mutant struct {
	name string
	rule rule
}

func (m mutant) String() string { return fmt.Sprintf("%s: %s", m.rule.Alert, m.name) }

// evalInterval is the rule evaluation interval of the alert unit tests
// (promtool's default): a for moves by one of it.
const evalInterval = time.Minute

// zeroStep is how far a threshold of 0 moves: a rate of 1.5 events in 5m.
// The tests' smallest firing rates (one event in 4 minutes, 0.0042/s) sit
// under it, so "> 0" may not become "more than a trickle".
const zeroStep = 0.005

// flips are the comparisons each comparison is changed into: made
// inclusive (or exclusive) at the boundary, and negated.
var flips = map[parser.ItemType][]parser.ItemType{
	parser.GTR: {parser.GTE, parser.LTE}, parser.GTE: {parser.GTR, parser.LSS},
	parser.LSS: {parser.LTE, parser.GTE}, parser.LTE: {parser.LSS, parser.GTR},
	parser.EQLC: {parser.NEQ}, parser.NEQ: {parser.EQLC},
}

// negated are the label matcher types each is changed into.
var negated = map[labels.MatchType]labels.MatchType{
	labels.MatchEqual: labels.MatchNotEqual, labels.MatchNotEqual: labels.MatchEqual,
	labels.MatchRegexp: labels.MatchNotRegexp, labels.MatchNotRegexp: labels.MatchRegexp,
}

// mutants returns r as printed back by the PromQL parser (named "") and
// every mutant of it: each comparison flipped (see flips); each number
// moved up and down by a quarter (0 by zeroStep); each label matcher
// negated; each `and` reduced to one of its sides; each absent(x) made
// abs(x), which returns x's series when present, the opposite; and the for
// one evaluation interval shorter and longer.
func mutants(r rule) ([]mutant, error) {
	expr, err := promql.ParseExpr(r.Expr)
	if err != nil {
		return nil, err
	}
	out := []mutant{{rule: withExpr(r, expr.String())}}
	add := func(name string) {
		out = append(out, mutant{name: name, rule: withExpr(r, expr.String())})
	}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.BinaryExpr:
			mutateBinary(n, add)
		case *parser.NumberLiteral:
			v := n.Val
			up, down := v*5/4, v*4/5
			if v == 0 {
				up, down = zeroStep, -zeroStep
			}
			for _, n.Val = range []float64{up, down} {
				add(fmt.Sprintf("%v → %v", v, n.Val))
			}
			n.Val = v
		case *parser.VectorSelector:
			for i, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					continue
				}
				n.LabelMatchers[i] = labels.MustNewMatcher(negated[m.Type], m.Name, m.Value)
				add(fmt.Sprintf("%s → %s", m, n.LabelMatchers[i]))
				n.LabelMatchers[i] = m
			}
		case *parser.Call:
			if n.Func.Name == "absent" {
				n.Func = parser.Functions["abs"]
				add("absent → abs")
				n.Func = parser.Functions["absent"]
			}
		}
		return nil
	})
	d, err := model.ParseDuration(r.For)
	if err != nil {
		return nil, fmt.Errorf("for %q: %w", r.For, err)
	}
	for _, f := range []time.Duration{time.Duration(d) - evalInterval, time.Duration(d) + evalInterval} {
		m := withExpr(r, expr.String())
		m.For = model.Duration(f).String()
		out = append(out, mutant{name: "for " + r.For + " → " + m.For, rule: m})
	}
	return out, nil
}

// mutateBinary calls add once for each mutant of n, restoring n after.
func mutateBinary(n *parser.BinaryExpr, add func(name string)) {
	op, lhs, rhs := n.Op, n.LHS, n.RHS
	if n.Op == parser.LAND { // `a and a` is a; `b and b` is b
		n.RHS = lhs
		add("keep only the left side of `and` " + strconv.Quote(rhs.String()))
		n.LHS, n.RHS = rhs, rhs
		add("keep only the right side of `and` " + strconv.Quote(lhs.String()))
		n.LHS, n.RHS = lhs, rhs
		return
	}
	if n.ReturnBool {
		return
	}
	for _, n.Op = range flips[op] {
		add(fmt.Sprintf("%q → %q in %q", op, n.Op, n.String()))
	}
	n.Op = op
}

// withExpr returns a copy of r with expr.
func withExpr(r rule, expr string) rule {
	r.Expr = expr
	return r
}
