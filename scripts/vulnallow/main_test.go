package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	stream := `{"config":{"protocol_version":"v1.0.0"}}
{"finding":{"osv":"GO-1","trace":[{"module":"m1","function":"F"},{"module":"keygate"}]}}
{"finding":{"osv":"GO-2","trace":[{"module":"m2","function":"G"}]}}
{"finding":{"osv":"GO-3","trace":[{"module":"m3","package":"p"}]}}
{"finding":{"osv":"GO-4","trace":[{"module":"m4"}]}}
`
	for _, tc := range []struct {
		allowed map[string]string
		bad     []string
	}{
		{nil, []string{"GO-1 (m1)", "GO-2 (m2)"}}, // GO-3 and GO-4 are imported or required, not called
		{map[string]string{"GO-1": "why"}, []string{"GO-2 (m2)"}},
		{map[string]string{"GO-1": "why", "GO-2": "why"}, nil},
	} {
		called, bad, err := check(strings.NewReader(stream), tc.allowed)
		if err != nil || len(called) != 2 || !slices.Equal(bad, tc.bad) {
			t.Errorf("allowed %v: called %v, bad %v, %v; want bad %v", tc.allowed, called, bad, err, tc.bad)
		}
	}
	if _, _, err := check(strings.NewReader("{not json"), nil); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestReadAllow(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("# comment\n\nGO-1 a reason\n"), 0o600)
	if m, err := readAllow(good); err != nil || m["GO-1"] != "a reason" || len(m) != 1 {
		t.Errorf("readAllow = %v, %v", m, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("GO-1\n"), 0o600)
	if _, err := readAllow(bad); err == nil || !strings.Contains(err.Error(), "no reason") {
		t.Errorf("an id without a reason: %v", err)
	}
}
