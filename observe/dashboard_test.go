package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Query      any         `json:"query"`
	Datasource *datasource `json:"datasource"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Collapsed   bool        `json:"collapsed"`
	Datasource  *datasource `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's panels
}

type target struct {
	Expr       string      `json:"expr"`
	RefID      string      `json:"refId"`
	Datasource *datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dsUID is how every panel and target names the Prometheus data source: the
// dashboard's DS_PROMETHEUS variable.
const dsUID = "${DS_PROMETHEUS}"

// query is one PromQL expression of a dashboard, named for errors; panel
// queries must filter by the job and instance variables.
type query struct {
	what, expr string
	panel      bool
}

// checkDashboard decodes a Grafana dashboard, checks its structure and
// every query, and returns every problem found.
func checkDashboard(exp map[string]series, data []byte) []error {
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return []error{fmt.Errorf("dashboard: %w", err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return []error{errors.New("dashboard: data after the JSON object")}
	}
	errs := d.checkHeader()
	queries, perr := d.queries()
	errs = append(errs, perr...)
	if len(queries) == 0 {
		errs = append(errs, errors.New("dashboard: no queries"))
	}
	for _, q := range queries {
		e, qerrs := checkExpr(exp, q.what, q.expr)
		errs = append(errs, qerrs...)
		if e != nil && q.panel {
			errs = append(errs, checkTemplated(q.what, e)...)
		}
	}
	return errs
}

// checkHeader checks the dashboard's identity, schema and variables.
func (d *dashboard) checkHeader() []error {
	var errs []error
	if d.UID == "" || d.Title == "" {
		errs = append(errs, errors.New("dashboard: uid and title are required"))
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		errs = append(errs, fmt.Errorf("dashboard: schemaVersion %d, want 36..41", d.SchemaVersion))
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["DS_PROMETHEUS"]; v.Type != "datasource" || v.Query != "prometheus" {
		errs = append(errs, errors.New(`dashboard: want a datasource variable DS_PROMETHEUS of type "prometheus"`))
	}
	for _, name := range []string{"job", "instance"} {
		if v := vars[name]; v.Type != "query" || v.Datasource == nil || v.Datasource.UID != dsUID {
			errs = append(errs, fmt.Errorf("dashboard: want a query variable %q on %s", name, dsUID))
		}
	}
	return errs
}

// labelValues is a Grafana variable query label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// queries returns the dashboard's PromQL: every query variable's, as
// count by (label) (selector) so that the label is checked too, and every
// panel target's.
func (d *dashboard) queries() ([]query, []error) {
	var qs []query
	var errs []error
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		if m == nil {
			errs = append(errs, fmt.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, text))
			continue
		}
		qs = append(qs, query{"variable " + v.Name, "count by (" + m[2] + ") (" + m[1] + ")", false})
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		pqs, perrs := p.queries(ids, false)
		qs, errs = append(qs, pqs...), append(errs, perrs...)
	}
	return qs, errs
}

// queries checks panel p (and a row's nested panels) and returns its
// targets' expressions. ids are the panel ids seen so far.
func (p *panel) queries(ids map[int]bool, nested bool) ([]query, []error) {
	name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(name+": "+format, args...)) }
	if p.ID <= 0 || ids[p.ID] {
		fail("id missing or not unique")
	}
	ids[p.ID] = true
	if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
		fail("gridPos %+v is outside the 24-column grid", g)
	}
	if p.Type == "row" {
		return p.rowQueries(ids, nested, errs)
	}
	if p.Type == "" || p.Title == "" || p.Description == "" {
		fail("type, title and description are required")
	}
	if len(p.Panels) > 0 || len(p.Targets) == 0 {
		fail("want targets and no nested panels")
	}
	if p.Datasource == nil || p.Datasource.UID != dsUID {
		fail("datasource is not %s", dsUID)
	}
	var qs []query
	refs := map[string]bool{}
	for _, t := range p.Targets {
		if t.Expr == "" || t.RefID == "" || refs[t.RefID] || t.Datasource == nil || t.Datasource.UID != dsUID {
			fail("target %q: want an expr, a unique refId and datasource %s", t.RefID, dsUID)
		}
		refs[t.RefID] = true
		qs = append(qs, query{name + " " + t.RefID, t.Expr, true})
	}
	return qs, errs
}

// rowQueries checks a row: only top-level, and only collapsed rows hold
// their panels.
func (p *panel) rowQueries(ids map[int]bool, nested bool, errs []error) ([]query, []error) {
	if nested || p.Title == "" || len(p.Targets) > 0 || (len(p.Panels) > 0 && !p.Collapsed) {
		errs = append(errs, fmt.Errorf("row %d %q: want a titled top-level row with no targets, holding panels only when collapsed", p.ID, p.Title))
	}
	var qs []query
	for _, c := range p.Panels {
		cqs, cerrs := c.queries(ids, true)
		qs, errs = append(qs, cqs...), append(errs, cerrs...)
	}
	return qs, errs
}
