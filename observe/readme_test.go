package observe

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMELabelValues: where the metrics table (docs/observability.md) lists a label's
// values (`label`: `a`, `b`; `other`: `c`), they are exactly the values
// keygate exports (an empty value is no label to Prometheus).
func TestREADMELabelValues(t *testing.T) {
	exp := exported(t)
	listed := regexp.MustCompile("^`([a-z_]+)`: (.+)$")
	value := regexp.MustCompile("`([a-z_]+)`")
	rows := 0
	for _, line := range strings.Split(string(read(t, "../docs/observability.md")), "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 3 || !strings.HasPrefix(cells[0], "| `keygate_") {
			continue
		}
		name := strings.Trim(cells[0], "| `")
		for _, part := range strings.Split(cells[1], "; ") {
			m := listed.FindStringSubmatch(part)
			if m == nil {
				continue
			}
			rows++
			label := m[1]
			var documented []string
			for _, v := range value.FindAllStringSubmatch(m[2], -1) {
				documented = append(documented, v[1])
			}
			slices.Sort(documented)
			exported := slices.DeleteFunc(slices.Sorted(maps.Keys(exp[name][label])), func(v string) bool { return v == "" })
			if !slices.Equal(documented, exported) {
				t.Errorf("docs/observability.md lists %s{%s} values %v; keygate exports %v", name, label, documented, exported)
			}
		}
	}
	if rows < 3 { // keygate_cache_events_total's event and cause, keygate_cache_entries' kind
		t.Errorf("found %d label value lists in docs/observability.md's metrics table, want the cache events, causes and entries", rows)
	}
}
