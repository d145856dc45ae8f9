package browsertest

import (
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// Violation is one axe-core rule that failed on the page.
type Violation struct {
	ID      string `json:"id"`     // the rule, e.g. "image-alt", "label"
	Impact  string `json:"impact"` // minor, moderate, serious or critical
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []Node `json:"nodes"`
}

// Node is an element that fails a rule.
type Node struct {
	// Target is the element's CSS selector, one per frame or shadow root
	// on the way to it (a selector inside a shadow root is joined by
	// " >>> ").
	Target         []string `json:"target"`
	HTML           string   `json:"html"`
	FailureSummary string   `json:"failureSummary"`
}

func (v Violation) String() string {
	targets := make([]string, 0, len(v.Nodes))
	for _, n := range v.Nodes {
		targets = append(targets, strings.Join(n.Target, " "))
	}
	return fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(targets, ", "))
}

// axeRun runs axe with its default rules (WCAG 2 A/AA and best practices)
// on the whole document and keeps what Violation needs.
const axeRun = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
  nodes: v.nodes.map(n => ({
    target: n.target.map(s => Array.isArray(s) ? s.join(' >>> ') : String(s)),
    html: n.html, failureSummary: n.failureSummary || '',
  })),
})))`

// Axe checks the current page with axe-core and returns the violations.
//
// axe.min.js is evaluated through the DevTools protocol (Runtime.evaluate),
// which a page's Content-Security-Policy does not govern, so pages served
// with script-src 'self' are checked as they are, with no CSP bypass.
// Without axe.min.js the test skips, or fails when $CI is set.
func (tab *Tab) Axe() []Violation {
	tab.t.Helper()
	src := tab.b.axe(tab.t)
	loaded := Get(tab, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if !loaded {
		tab.Run(chromedp.Evaluate[chromedp.Void](src))
	}
	return Get(tab, chromedp.Evaluate[[]Violation](axeRun, chromedp.EvalAwaitPromise))
}

// Serious keeps the violations whose impact is serious or critical.
func Serious(vs []Violation) []Violation {
	var out []Violation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}
