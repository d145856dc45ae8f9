package leakscan

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// FuzzScan: on any input the line scanner never panics, every finding is
// a valid key (policy's parser agrees) found exactly where it says, and a
// scan in small overlapping pieces finds exactly what a scan of whole
// lines finds.
func FuzzScan(f *testing.F) {
	kg := makeKey("kg", "4VvXJ3tq9aBz"+strings.Repeat("Ab3", 10)+"xy")
	long := makeKey("abcdefghij", strings.Repeat("Z9", 22))
	for _, s := range []string{
		"", "\n", kg, kg + "\n", "x" + kg, "KEY=" + kg + "\r\n", kg + kg, kg + "," + kg, kg + "_" + long,
		breakChecksum(kg), kg + "A", kg[1:], "_" + kg[3:], strings.Repeat("a", 200) + kg + strings.Repeat("b", 100),
		"a\n\n" + long + "\nb", "\xff" + kg + "\x00", strings.Repeat("_", 300),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := scanWhole(in)
		small := newLineScanner(newMatcher())
		small.br = bufio.NewReaderSize(nil, 128)
		var pieces []hit
		if err := small.scan(bytes.NewReader(in), func(h hit) error { pieces = append(pieces, h); return nil }); err != nil {
			t.Fatal(err)
		}
		full, _, err := New(Config{}).Reader(bytes.NewReader(in), "in")
		if err != nil {
			t.Fatal(err)
		}
		if len(pieces) != len(whole) || len(full) != len(whole) {
			t.Fatalf("%d findings in 128-byte pieces, %d with the default buffer, %d in whole lines", len(pieces), len(full), len(whole))
		}
		lines := bytes.Split(in, []byte("\n"))
		for i, h := range pieces {
			if h.line != whole[i].line || h.column != whole[i].column || h.rawKey != whole[i].rawKey {
				t.Fatalf("finding %d: %d:%d in pieces, %d:%d in whole lines", i, h.line, h.column, whole[i].line, whole[i].column)
			}
			l := lines[h.line-1]
			if h.column < 1 || h.column-1+len(h.rawKey) > len(l) || string(l[h.column-1:h.column-1+len(h.rawKey)]) != h.rawKey {
				t.Fatalf("finding %d at %d:%d is not where it says", i, h.line, h.column)
			}
			format, err := policy.NewFormat(h.prefix)
			if err != nil {
				t.Fatalf("finding %d: prefix: %v", i, err)
			}
			if id, err := format.Parse(h.rawKey); err != nil || id != h.keyID {
				t.Fatalf("finding %d is not a valid key: %v", i, err)
			}
		}
	})
}

// scanWhole is the matcher over each whole line, the reference for the
// piecewise scan.
func scanWhole(in []byte) []hit {
	m := newMatcher()
	var out []hit
	for i, l := range bytes.SplitAfter(in, []byte("\n")) {
		m.find(l, 0, len(l), func(mt match) { out = append(out, hit{match: mt, line: i + 1, column: mt.start + 1}) })
	}
	return out
}
