package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Usage charts: with Config.PrometheusURL set, the key, keys (filtered by
// tenant) and overview pages show the request rate of the last hours from
// keygate's own metrics — keygate_key_requests_total (opt-in on serve:
// --metrics-key-requests) per key and per tenant, keygate_checks_total for
// every Check — drawn server-side as SVG (no script, nothing inline that
// the Content-Security-Policy would block).

// chartWindow and chartStep are the charts' span and resolution.
const (
	chartWindow = 6 * time.Hour
	chartStep   = 5 * time.Minute
)

// chart is a drawn usage chart, or why there is none.
type chart struct {
	Title  string
	Error  string // Prometheus could not answer
	Empty  bool   // no samples: the metric is off, or no requests
	Width  int
	Height int
	Max    string // the y axis' top, requests a second
	From   string // the x axis' ends
	To     string
	Lines  []chartLine
}

type chartLine struct {
	Name   string // the series' result label
	Colour string
	Points string // SVG polyline points
	Last   string // the latest rate, for the legend
}

// colours keep a contrast ratio of at least 3:1 on white (graphics).
var colours = map[string]string{"allowed": "#1b6e20", "denied": "#a4161a"}

// usageChart queries Prometheus for query (a rate by result) over the
// chart window ending now; nil without Config.PrometheusURL.
func (c *Console) usageChart(ctx context.Context, title, query string) *chart {
	if c.cfg.PrometheusURL == "" {
		return nil
	}
	end := c.cfg.Now() // the last evaluation at now: the newest samples count
	start := end.Add(-chartWindow)
	ch := &chart{Title: title, Width: 640, Height: 160, From: start.UTC().Format("15:04"), To: end.UTC().Format("15:04 UTC")}
	series, err := c.queryRange(ctx, query, start, end)
	if err != nil {
		ch.Error = err.Error()
		return ch
	}
	top := 0.0
	for _, s := range series {
		for _, p := range s.points {
			top = math.Max(top, p.v)
		}
	}
	if len(series) == 0 || top == 0 {
		ch.Empty = true
		return ch
	}
	ch.Max = strconv.FormatFloat(top, 'g', 3, 64) + "/s"
	span := end.Sub(start).Seconds()
	for _, s := range series {
		var pts []string
		for _, p := range s.points {
			x := float64(ch.Width) * p.t.Sub(start).Seconds() / span
			y := float64(ch.Height) * (1 - p.v/top)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		colour := colours[s.result]
		if colour == "" {
			colour = "#0b5cad"
		}
		last := s.points[len(s.points)-1].v
		ch.Lines = append(ch.Lines, chartLine{Name: s.result, Colour: colour, Points: strings.Join(pts, " "),
			Last: strconv.FormatFloat(last, 'g', 3, 64) + "/s"})
	}
	return ch
}

type sample struct {
	t time.Time
	v float64
}

type series struct {
	result string
	points []sample
}

// queryRange runs a Prometheus range query (GET /api/v1/query_range).
func (c *Console) queryRange(ctx context.Context, query string, start, end time.Time) ([]series, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q := url.Values{"query": {query}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)},
		"step": {strconv.Itoa(int(chartStep.Seconds()))}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.PrometheusURL, "/")+"/api/v1/query_range?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus: HTTP %d, not a query answer", resp.StatusCode)
	}
	if r.Status != "success" || r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("prometheus: HTTP %d: %s", resp.StatusCode, r.Error)
	}
	var out []series
	for _, res := range r.Data.Result {
		s := series{result: res.Metric["result"]}
		for _, v := range res.Values {
			ts, ok1 := v[0].(float64)
			str, ok2 := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if !ok1 || !ok2 || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				continue
			}
			s.points = append(s.points, sample{t: time.Unix(int64(ts), 0), v: f})
		}
		if len(s.points) > 0 {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b series) int { return strings.Compare(a.result, b.result) })
	return out, nil
}

// promString quotes s as a PromQL string literal.
func promString(s string) string { return strconv.Quote(s) }
