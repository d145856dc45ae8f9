package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const root = "../.."

// linkRE is a Markdown link or image: [text](target).
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinks: every relative link in the documentation (README.md, docs/,
// BENCHMARKS.md) points to a file that exists and, with a #fragment, to a
// heading that file has, so moving a section cannot leave a dead link.
func TestLinks(t *testing.T) {
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "BENCHMARKS.md")
	checked := 0
	for _, f := range files {
		text := read(t, f)
		for _, m := range linkRE.FindAllStringSubmatch(stripCode(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := f
			if file != "" {
				dest = filepath.Join(filepath.Dir(f), file)
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s: link to %s: no such file", f, target)
					continue
				}
			}
			if frag != "" {
				if !strings.HasSuffix(dest, ".md") {
					continue
				}
				if !anchors(read(t, dest))[frag] {
					t.Errorf("%s: link to %s: %s has no heading #%s", f, target, dest, frag)
				}
			}
			checked++
		}
	}
	if checked < 50 {
		t.Errorf("only %d links checked: is the link pattern still right?", checked)
	}
}

// TestAnchors pins the heading slugs this test computes to GitHub's.
func TestAnchors(t *testing.T) {
	got := anchors("# keygate\n## Serving (`keygate serve`)\n## Deploy with Envoy / Istio\n### Cache\n### Cache\n```\n## not a heading\n```\n")
	for _, want := range []string{"keygate", "serving-keygate-serve", "deploy-with-envoy--istio", "cache", "cache-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a heading inside a code block")
	}
}

func read(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// anchors are the fragment ids GitHub gives a file's headings.
func anchors(text string) map[string]bool {
	out, seen := map[string]bool{}, map[string]int{}
	for _, line := range strings.Split(stripCode(text), "\n") {
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		s := slug(line[level+1:])
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// slug is GitHub's heading id: lower case, punctuation other than "-" and
// "_" dropped, spaces to "-".
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// stripCode blanks fenced code blocks, whose lines are neither headings
// nor links.
func stripCode(text string) string {
	lines := strings.Split(text, "\n")
	in := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			in = !in
			lines[i] = ""
			continue
		}
		if in {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}
