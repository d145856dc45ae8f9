package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chart geometry (pixels).
const (
	chartLeft   = 78
	chartRight  = 24
	groupWidth  = 100
	panelHeight = 210
	latTop      = 86
	cpuTop      = latTop + panelHeight + 70
	labelsTop   = cpuTop + panelHeight
	chartHeight = labelsTop + 130
)

// series is one bar within a group.
type series struct {
	name, color string
	value       func(r *Result) float64
	server      string
}

var latencySeries = []series{
	{"keygate p50", "#1f4e79", func(r *Result) float64 { return r.Total.Latency.P50U }, Keygate},
	{"keygate p99", "#6fa8dc", func(r *Result) float64 { return r.Total.Latency.P99U }, Keygate},
	{"floor p50", "#b45f06", func(r *Result) float64 { return r.Total.Latency.P50U }, Floor},
	{"floor p99", "#f6b26b", func(r *Result) float64 { return r.Total.Latency.P99U }, Floor},
}

var cpuSeries = []series{
	{"keygate", "#1f4e79", func(r *Result) float64 { return r.Total.ServerCPUUs }, Keygate},
	{"floor", "#b45f06", func(r *Result) float64 { return r.Total.ServerCPUUs }, Floor},
}

// group is one configuration: its keygate and floor results.
type group struct {
	label string
	res   map[string]*Result
}

func groups(results []Result) []group {
	var out []group
	index := map[string]int{}
	for i := range results {
		r := &results[i]
		label := r.Config()
		if r.LoadGen != "ghz" {
			label += " (" + r.LoadGen + ")"
		}
		j, ok := index[label]
		if !ok {
			j = len(out)
			index[label] = j
			out = append(out, group{label: label, res: map[string]*Result{}})
		}
		out[j].res[r.Server] = r
	}
	return out
}

// Chart draws results as an SVG: per configuration, grouped bars of p50/p99
// latency (log scale) and server CPU per Check, keygate beside the floor.
func Chart(title, subtitle string, results []Result) string {
	gs := groups(results)
	width := chartLeft + chartRight + groupWidth*max(len(gs), 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, chartHeight, width, chartHeight)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", chartLeft, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="40" font-size="11" fill="#444">%s</text>`+"\n", chartLeft, html.EscapeString(subtitle))
	lo, hi := logRange(gs)
	scaleLat := func(v float64) float64 { return panelHeight * (math.Log10(v) - lo) / (hi - lo) }
	panel(&b, gs, latencySeries, latTop, scaleLat, "latency (log scale)", false)
	for d := lo; d <= hi; d++ {
		gridLine(&b, width, latTop+panelHeight-scaleLat(math.Pow(10, d)), fmtMicros(math.Pow(10, d)))
	}
	top := niceCeil(maxValue(gs, cpuSeries))
	scaleCPU := func(v float64) float64 { return panelHeight * v / top }
	panel(&b, gs, cpuSeries, cpuTop, scaleCPU, "server CPU per Check, µs", true)
	for i := 0; i <= 5; i++ {
		v := top * float64(i) / 5
		gridLine(&b, width, cpuTop+panelHeight-scaleCPU(v), fmt.Sprintf("%g", v))
	}
	groupLabels(&b, gs)
	legend(&b, width, latTop-14, latencySeries)
	legend(&b, width, cpuTop-14, cpuSeries)
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws one panel's axis title and bars (with their values on top
// if labels is set).
func panel(b *strings.Builder, gs []group, ss []series, top float64, scale func(float64) float64, axis string, labels bool) {
	bottom := top + panelHeight
	fmt.Fprintf(b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+panelHeight/2, axis)
	fmt.Fprintf(b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="black"/>`+"\n", chartLeft, top, chartLeft, bottom)
	barW := float64(groupWidth-20) / float64(len(ss))
	for gi, g := range gs {
		x0 := float64(chartLeft + gi*groupWidth + 10)
		for si, s := range ss {
			r, ok := g.res[s.server]
			if !ok || s.value(r) <= 0 {
				continue
			}
			v := s.value(r)
			h := math.Max(scale(v), 1)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				x0+float64(si)*barW, bottom-h, barW-2, h, s.color, html.EscapeString(g.label), s.name, fmtValue(v))
			if labels {
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%.1f</text>`+"\n", x0+float64(si)*barW+(barW-2)/2, bottom-h-3, v)
			}
		}
	}
}

func gridLine(b *strings.Builder, width int, y float64, label string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ccc" stroke-dasharray="3 3"/>`+"\n", chartLeft, y, width-chartRight, y)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", chartLeft-4, y+4, label)
}

func groupLabels(b *strings.Builder, gs []group) {
	for gi, g := range gs {
		x := chartLeft + gi*groupWidth + groupWidth/2
		fmt.Fprintf(b, `<text transform="translate(%d %d) rotate(-35)" text-anchor="end">%s</text>`+"\n", x, labelsTop+14, html.EscapeString(g.label))
	}
}

func legend(b *strings.Builder, width, y int, ss []series) {
	x := width - chartRight - 110*len(ss)
	for i, s := range ss {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x+i*110, y-10, s.color, x+i*110+16, y, s.name)
	}
}

// logRange is the decade range covering every latency bar.
func logRange(gs []group) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, g := range gs {
		for _, s := range latencySeries {
			if r, ok := g.res[s.server]; ok && s.value(r) > 0 {
				lo = math.Min(lo, math.Log10(s.value(r)))
				hi = math.Max(hi, math.Log10(s.value(r)))
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 1, 3
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi == lo {
		hi++
	}
	return lo, hi
}

func maxValue(gs []group, ss []series) float64 {
	m := 0.0
	for _, g := range gs {
		for _, s := range ss {
			if r, ok := g.res[s.server]; ok {
				m = math.Max(m, s.value(r))
			}
		}
	}
	return m
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtMicros(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%g s", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%g ms", v/1e3)
	}
	return fmt.Sprintf("%g µs", v)
}

func fmtValue(v float64) string { return fmt.Sprintf("%.1f µs", v) }
