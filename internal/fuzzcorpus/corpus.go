// Package fuzzcorpus reads Go fuzzing corpus files ("go test fuzz v1"), so
// that tests can replay a target's committed corpus through its decision
// function, and classifies inputs for scripts/fuzz-seed.sh.
//
// A decision fuzzer's test file registers a classifier with Classify; run as
//
//	go test -run '^TestFuzzClassify$' ./policy/ -args -fuzzclassify Target=DIR -fuzzclassify.out FILE
//
// it writes one "class<TAB>file" line per input in DIR to FILE, where class
// is the decision the input reaches ("allowed", a deny's reason code, …).
package fuzzcorpus

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const header = "go test fuzz v1"

// Parse decodes one corpus file: the values of its lines, in order. It
// reads the types keygate's targets use: string, []byte, int64, int, bool,
// byte and rune.
func Parse(data []byte) ([]any, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != header {
		return nil, errors.New("fuzzcorpus: not a \"" + header + "\" file")
	}
	var vals []any
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		v, err := value(line)
		if err != nil {
			return nil, fmt.Errorf("fuzzcorpus: %q: %w", line, err)
		}
		vals = append(vals, v)
	}
	return vals, sc.Err()
}

func value(line string) (any, error) {
	expr, err := parser.ParseExpr(line)
	if err != nil {
		return nil, err
	}
	call, ok := expr.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return nil, errors.New("want type(literal)")
	}
	typ := typeName(call.Fun)
	lit, neg := call.Args[0], false
	if u, ok := lit.(*ast.UnaryExpr); ok && u.Op == token.SUB {
		lit, neg = u.X, true
	}
	if id, ok := lit.(*ast.Ident); ok && typ == "bool" && (id.Name == "true" || id.Name == "false") {
		return id.Name == "true", nil
	}
	bl, ok := lit.(*ast.BasicLit)
	if !ok {
		return nil, errors.New("want a literal")
	}
	text := bl.Value
	if neg {
		text = "-" + text
	}
	switch {
	case typ == "string" && bl.Kind == token.STRING:
		return strconv.Unquote(text)
	case typ == "[]byte" && bl.Kind == token.STRING:
		s, err := strconv.Unquote(text)
		return []byte(s), err
	case (typ == "int64" || typ == "int") && bl.Kind == token.INT:
		n, err := strconv.ParseInt(text, 0, 64)
		if typ == "int" {
			return int(n), err
		}
		return n, err
	case (typ == "byte" || typ == "rune" || typ == "int32" || typ == "uint8") && bl.Kind == token.CHAR:
		r, _, _, err := strconv.UnquoteChar(text[1:len(text)-1], '\'')
		if typ == "byte" || typ == "uint8" {
			return byte(r), err
		}
		return r, err
	}
	return nil, fmt.Errorf("unsupported %s literal", typ)
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && t.Len == nil {
			return "[]" + id.Name
		}
	}
	return ""
}

// Input is one corpus file, decoded.
type Input struct {
	Name   string // file path
	Values []any
}

// Dir reads every file in dir (sorted by name); a missing dir is empty.
func Dir(dir string) ([]Input, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Input
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		vals, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, Input{Name: name, Values: vals})
	}
	return out, nil
}

// Committed reads target's committed corpus, testdata/fuzz/<target>.
func Committed(t testing.TB, target string) []Input {
	t.Helper()
	in, err := Dir(filepath.Join("testdata", "fuzz", target))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

var (
	classifyFlag = flag.String("fuzzclassify", "", "Target=DIR: write the decision class of each corpus file in DIR (see package fuzzcorpus)")
	classifyOut  = flag.String("fuzzclassify.out", "", "file that -fuzzclassify writes to (default stdout)")
)

// Classifier decodes one input's values and returns its decision class;
// it may fail t for an input the target's properties reject.
type Classifier func(t *testing.T, vals []any) string

// Classify is the body of a package's TestFuzzClassify: with -fuzzclassify
// Target=DIR naming one of targets, it writes each input's class; without
// the flag, or for another package's target, it does nothing.
func Classify(t *testing.T, targets map[string]Classifier) {
	target, dir, ok := strings.Cut(*classifyFlag, "=")
	if !ok {
		t.Skip("no -fuzzclassify Target=DIR")
	}
	classify, ok := targets[target]
	if !ok {
		t.Skipf("%s has no classifier here", target)
	}
	inputs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, in := range inputs {
		class := "unclassified"
		t.Run(filepath.Base(in.Name), func(t *testing.T) { class = classify(t, in.Values) })
		lines = append(lines, class+"\t"+in.Name+"\n")
	}
	text := strings.Join(lines, "")
	if *classifyOut == "" {
		fmt.Print(text)
		return
	}
	if err := os.WriteFile(*classifyOut, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Classes counts the classes inputs reach (with the names of the first
// input reaching each), for tests that require a corpus to reach both an
// allow and a deny.
type Classes map[string][]string

// Add notes that input name reached class.
func (c Classes) Add(class, name string) { c[class] = append(c[class], name) }

// Sorted returns the classes by name.
func (c Classes) Sorted() []string {
	var names []string
	for k := range c {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// RequireAllowAndDeny fails t unless some input reached allow and some a
// deny (any other class), so a corpus cannot drift to one side unnoticed.
func (c Classes) RequireAllowAndDeny(t testing.TB, allow string) {
	t.Helper()
	denies := 0
	for class, names := range c {
		if class != allow {
			denies += len(names)
		}
	}
	if len(c[allow]) == 0 {
		t.Errorf("no seed or committed input reaches %q (classes: %v)", allow, c.summary())
	}
	if denies == 0 {
		t.Errorf("no seed or committed input reaches a deny (classes: %v)", c.summary())
	}
	t.Logf("classes: %v", c.summary())
}

func (c Classes) summary() string {
	var parts []string
	for _, k := range c.Sorted() {
		parts = append(parts, fmt.Sprintf("%s=%d", k, len(c[k])))
	}
	return strings.Join(parts, " ")
}

// Arg is value i of an input, as a T; it fails t when the input does not
// have one (a corpus file written for another signature).
func Arg[T any](t testing.TB, vals []any, i int) T {
	t.Helper()
	var zero T
	if i >= len(vals) {
		t.Fatalf("input has %d values, want more than %d", len(vals), i)
		return zero
	}
	v, ok := vals[i].(T)
	if !ok {
		t.Fatalf("input value %d is a %T, want %T", i, vals[i], zero)
	}
	return v
}

// Replay runs classify on every seed and every committed input of target
// (testdata/fuzz/<target>), each as a subtest, and requires that they
// include one that reaches class allow and one that reaches a deny: a
// corpus that drifts back to denies only (or allows only) fails plain
// `go test`. (Go's fuzz cache, which scripts/fuzz-seed.sh copies from,
// holds only inputs that widened coverage beyond the seeds, so a target
// whose seeds already cover its allow path may commit no allow of its own.)
func Replay(t *testing.T, target string, seeds [][]any, allow string, classify Classifier) {
	t.Helper()
	seen := Classes{}
	for i, s := range seeds {
		name := fmt.Sprintf("seed#%d", i)
		t.Run(name, func(t *testing.T) { seen.Add(classify(t, s), name) })
	}
	committed := Committed(t, target)
	for _, in := range committed {
		name := filepath.Base(in.Name)
		t.Run(name, func(t *testing.T) { seen.Add(classify(t, in.Values), name) })
	}
	seen.RequireAllowAndDeny(t, allow)
	if len(committed) == 0 {
		t.Errorf("no committed corpus in testdata/fuzz/%s (scripts/fuzz-seed.sh)", target)
	}
}
