package extauthz

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childCase names the case a re-executed test binary runs (see
// TestStoreFaultsDoNotCrash): a crash there must not take down the suite.
const childCase = "KEYGATE_EXTAUTHZ_CHILD_CASE"

// storeFaults are store misbehaviours that must end in a 500 deny, never a
// crashed process. They run in a child process because today they crash it.
var storeFaults = map[string]struct {
	fault func(s *fakeStore)
	want  []string // acceptable reason codes
}{
	"store panics":           {func(s *fakeStore) { s.panicV = "test store exploded" }, []string{"internal_error"}},
	"store returns nil, nil": {func(s *fakeStore) { s.nilRec = true }, []string{"internal_error", "invalid_key_record", "unknown_key"}},
}

func TestStoreFaultsDoNotCrash(t *testing.T) {
	if name := os.Getenv(childCase); name != "" {
		runStoreFault(t, name)
		return
	}
	for name := range storeFaults {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestStoreFaultsDoNotCrash$", "-test.count=1")
			cmd.Env = append(os.Environ(), childCase+"="+name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s: the process crashed instead of denying (exit: %v); child output:\n%s", name, err, firstLines(out, 25))
			}
		})
	}
}

func runStoreFault(t *testing.T, name string) {
	tc, ok := storeFaults[name]
	if !ok {
		t.Fatalf("unknown child case %q", name)
	}
	e := newEnv(t)
	e.put(otherKey, nil)
	e.store.set(tc.fault)
	got := outcome(e.check(newReq().key(testKey).build()))
	ok = false
	for _, w := range tc.want {
		ok = ok || got == w
	}
	if !ok {
		t.Errorf("outcome %q, want one of %v", got, tc.want)
	}
	// The server keeps working once the store behaves.
	e.store.set(func(s *fakeStore) { s.panicV, s.nilRec = nil, false })
	if got := outcome(e.check(newReq().key(otherKey).build())); got != "allowed" {
		t.Errorf("after the fault: %q, want allowed", got)
	}
}

func firstLines(out []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) > n {
		lines = lines[:n] // the panic message and first frames come first
	}
	return strings.TrimSpace(string(bytes.Join(lines, []byte("\n"))))
}
