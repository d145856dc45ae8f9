package observe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// promtool finds promtool: $PROMTOOL, <repo>/.tools/promtool (linked by
// scripts/promtool.sh) or $PATH. Without one it skips t, or fails it when
// $CI is set.
func promtool(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("PROMTOOL"), filepath.Join("..", ".tools", "promtool")}
	if p, err := exec.LookPath("promtool"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c
		}
	}
	msg := "no promtool ($PROMTOOL, .tools/promtool or $PATH): run scripts/promtool.sh"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this fails instead of skipping)")
	}
	t.Skip(msg)
	return ""
}

func runPromtool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// TestPromtoolCheckRules: Prometheus's own checker accepts the rules file,
// and rejects a copy with a broken expression (so a pass means something).
func TestPromtoolCheckRules(t *testing.T) {
	bin := promtool(t)
	out, err := runPromtool(t, bin, "check", "rules", rulesFile)
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	t.Logf("%s", out)

	broken := filepath.Join(t.TempDir(), "broken.yaml")
	data := strings.Replace(string(read(t, rulesFile)), "keygate_ready == 0", "keygate_ready ==", 1)
	if err := os.WriteFile(broken, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, bin, "check", "rules", broken); err == nil {
		t.Errorf("promtool accepted a broken rule:\n%s", out)
	}
}
