package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/keygate/keygate/internal/leakscan"
	"github.com/keygate/keygate/policy"
)

// gitleaksBin finds gitleaks: $GITLEAKS, <repo>/.tools/gitleaks (linked by
// scripts/gitleaks.sh) or $PATH. Without one it skips t, or fails it when
// $CI is set.
func gitleaksBin(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("GITLEAKS"), filepath.Join("..", ".tools", "gitleaks")}
	if p, err := exec.LookPath("gitleaks"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); c != "" && err == nil && !fi.IsDir() {
			return c
		}
	}
	msg := "no gitleaks ($GITLEAKS, .tools/gitleaks or $PATH): run scripts/gitleaks.sh"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this fails instead of skipping)")
	}
	t.Skip(msg)
	return ""
}

// gitleaksFinding is the part of gitleaks' JSON report the tests read.
type gitleaksFinding struct {
	RuleID      string
	File        string
	StartLine   int
	StartColumn int
	Secret      string
	Tags        []string
}

// runGitleaks runs gitleaks with args and config and returns its findings.
// Its output is only printed, redacted, when it fails.
func runGitleaks(t *testing.T, f *fixture, config string, args ...string) []gitleaksFinding {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(args, "--config", config, "--no-banner", "--no-color", "--log-level", "error",
		"--report-format", "json", "--report-path", report)
	out, err := exec.CommandContext(ctx, gitleaksBin(t), args...).CombinedOutput()
	f.noSecrets(t, "gitleaks' output", string(out))
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) { // 1: leaks found
		t.Fatalf("gitleaks %s: %v\n%s", args[0], err, redact(string(out)))
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var found []gitleaksFinding
	if err := json.Unmarshal(data, &found); err != nil {
		t.Fatalf("gitleaks report: %v", err)
	}
	return found
}

// TestGitleaks: the real gitleaks with rules/gitleaks.toml (gitleaks'
// own rules included) reports exactly the keygate-shaped strings: live,
// revoked and never-issued keys in JSON, YAML, .env, URLs and Go, a
// base64-encoded key (gitleaks decodes), and a checksum-broken key, which
// it cannot tell from a real one; no near miss, and no other rule fires.
// keygate scan on the same tree drops the checksum-broken one.
func TestGitleaks(t *testing.T) {
	f := newFixture(t)
	found := runGitleaks(t, f, "gitleaks.toml", "dir", f.dir)
	got, others := map[string]string{}, map[string]string{}
	for _, g := range found {
		rel, err := filepath.Rel(f.dir, g.File)
		if err != nil {
			t.Fatal(err)
		}
		l := loc(filepath.ToSlash(rel), g.StartLine, gitleaksColumn(g))
		if g.RuleID != "keygate-api-key" {
			others[l] = g.RuleID
			continue
		}
		got[l] = g.Secret
	}
	// gitleaks' own rules fire on near misses after "token:" (its
	// generic-api-key) and on the Kubernetes Secret, never on a string
	// the keygate rule reports: gitleaks drops a generic finding that a
	// specific rule also made.
	for l, rule := range others {
		if _, dup := got[l]; dup {
			t.Errorf("gitleaks rule %s reports %s too", rule, l)
		}
	}
	t.Logf("gitleaks' own rules reported %d other strings", len(others))
	compare(t, "gitleaks", f.want(gitleaks), got)
}

// TestGitleaksHistory: `gitleaks git` with the rule finds the keys in a
// repository's history after they were deleted from its tree.
func TestGitleaksHistory(t *testing.T) {
	gitleaksBin(t)
	f := newFixture(t)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", f.dir, "-c", "user.name=t", "-c", "user.email=t@example.com",
			"-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v: %s", args[0], err, redact(string(out)))
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "fixtures")
	git("rm", "-q", "-r", ".")
	git("commit", "-q", "-m", "remove them")
	config, err := filepath.Abs("gitleaks.toml")
	if err != nil {
		t.Fatal(err)
	}
	found := runGitleaks(t, f, config, "git", f.dir)
	got := map[string]string{}
	for _, g := range found {
		if g.RuleID == "keygate-api-key" {
			got[loc(g.File, g.StartLine, gitleaksColumn(g))] = g.Secret
		}
	}
	compare(t, "gitleaks git", f.want(gitleaks), got)
}

// TestGitleaksOtherPrefix: for a deployment with --key-prefix acme,
// replacing kg in the rule (as its comments say) finds acme keys and no
// longer kg ones.
func TestGitleaksOtherPrefix(t *testing.T) {
	gitleaksBin(t)
	data, err := os.ReadFile("gitleaks.toml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	replaced := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "regex =") || strings.HasPrefix(l, "keywords =") {
			lines[i] = strings.ReplaceAll(l, "kg_", "acme_")
			replaced++
		}
	}
	rule := strings.Join(lines, "\n")
	if replaced != 2 || strings.Count(rule, "acme_") != 2 {
		t.Fatalf("want kg_ in one regex and one keywords line of gitleaks.toml")
	}
	config := filepath.Join(t.TempDir(), "acme.toml")
	if err := os.WriteFile(config, []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: t.TempDir()}
	acme, kg := generate(t, "acme"), generate(t, "kg")
	f.secrets = []string{acme, kg}
	f.add(t, "a.env", "KEY=", acme, "", "an acme key", gitleaks)
	f.add(t, "b.env", "KEY=", kg, "", "a kg key", 0)
	got := map[string]string{}
	for _, g := range runGitleaks(t, f, config, "dir", f.dir) {
		if g.RuleID != "keygate-api-key" {
			continue // the kg key, without its rule, is left to generic-api-key
		}
		rel, _ := filepath.Rel(f.dir, g.File)
		got[loc(rel, g.StartLine, gitleaksColumn(g))] = g.Secret
	}
	compare(t, "gitleaks (acme)", f.want(gitleaks), got)
}

// gitleaksColumn is a finding's 1-based column. gitleaks v8 counts the
// newline before a line as its first column on every line but the first.
func gitleaksColumn(g gitleaksFinding) int {
	if g.StartLine > 1 {
		return g.StartColumn - 1
	}
	return g.StartColumn
}

// truffleHogConfig is TruffleHog's custom detector file, decoded strictly:
// a misspelt field fails the test.
type truffleHogConfig struct {
	Detectors []struct {
		Name         string            `json:"name"`
		Keywords     []string          `json:"keywords"`
		Regex        map[string]string `json:"regex"`
		Entropy      float64           `json:"entropy"`
		ExcludeWords []string          `json:"exclude_words"`
		Verify       []struct {
			Endpoint string   `json:"endpoint"`
			Unsafe   bool     `json:"unsafe"`
			Headers  []string `json:"headers"`
		} `json:"verify"`
	} `json:"detectors"`
}

// TestTruffleHog: trufflehog.yaml is a valid custom detector (strict
// decode; one regex, with one capture group, that compiles as Go's RE2,
// which TruffleHog uses; lower-case keywords), and applied the way
// TruffleHog applies it (keyword prefilter, the regex's capture group,
// the entropy floor) it reports exactly what gitleaks' rule does, except
// the base64-encoded key. TruffleHog itself cannot be installed here.
func TestTruffleHog(t *testing.T) {
	data, err := os.ReadFile("trufflehog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg truffleHogConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("trufflehog.yaml: %v", err)
	}
	if len(cfg.Detectors) != 1 {
		t.Fatalf("%d detectors, want 1", len(cfg.Detectors))
	}
	d := cfg.Detectors[0]
	if d.Name == "" || len(d.Keywords) == 0 || len(d.Regex) != 1 || d.Entropy <= 0 || len(d.Verify) != 0 {
		t.Fatalf("detector %+v: want a name, keywords, one regex, an entropy floor and no verifier yet", d)
	}
	var re *regexp.Regexp
	for _, expr := range d.Regex {
		re = regexp.MustCompile(expr)
	}
	if re.NumSubexp() != 1 {
		t.Fatalf("regex has %d capture groups, want 1", re.NumSubexp())
	}
	for _, k := range d.Keywords {
		if k != strings.ToLower(k) {
			t.Errorf("keyword %q: TruffleHog lower-cases data before matching keywords", k)
		}
	}

	f := newFixture(t)
	got := map[string]string{}
	walk(t, f.dir, func(rel string, data []byte) {
		lower := bytes.ToLower(data)
		hit := false
		for _, k := range d.Keywords {
			hit = hit || bytes.Contains(lower, []byte(k))
		}
		if !hit {
			return
		}
		for _, m := range re.FindAllSubmatchIndex(data, -1) {
			secret := string(data[m[2]:m[3]])
			if entropy(secret) < d.Entropy {
				continue
			}
			line, col := position(data, m[2])
			got[loc(rel, line, col)] = secret
		}
	})
	compare(t, "the TruffleHog detector", f.want(trufflehog), got)
}

// TestGitHubPattern: the custom pattern in github-secret-scanning.md
// (secret format between its before and after patterns) matches every
// "matches" test string and no "nomatch" one, its example key's checksum is
// valid (and the one marked wrong is not), and on the fixtures it reports
// what the gitleaks rule does, plus the placeholder (no entropy floor) and
// minus the base64-encoded key.
func TestGitHubPattern(t *testing.T) {
	data, err := os.ReadFile("github-secret-scanning.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	format, before, after := section(t, doc, "## Secret format"), section(t, doc, "## Before secret"), section(t, doc, "## After secret")
	re := regexp.MustCompile(`(?:` + before + `)(` + format + `)(?:` + after + `)`)
	for _, s := range blockLines(t, doc, "```matches") {
		if !re.MatchString(s) {
			t.Errorf("a \"matches\" test string does not match: %s", redact(s))
		}
	}
	for _, s := range blockLines(t, doc, "```nomatch") {
		if re.MatchString(s) {
			t.Errorf("a \"nomatch\" test string matches: %s", redact(s))
		}
	}
	kg, _ := policy.NewFormat("kg")
	matches := blockLines(t, doc, "```matches")
	example := re.FindStringSubmatch(matches[0])[1]
	if _, err := kg.Parse(example); err != nil {
		t.Errorf("the example key: %v", err)
	}
	if _, err := kg.Parse(re.FindStringSubmatch(matches[len(matches)-1])[1]); !errors.Is(err, policy.ErrKeyChecksum) {
		t.Errorf("the last \"matches\" string should have a wrong checksum: %v", err)
	}
	if checksummed(example[:len(example)-6]) != example {
		t.Error("example checksum")
	}

	f := newFixture(t)
	got := map[string]string{}
	walk(t, f.dir, func(rel string, data []byte) {
		for _, m := range re.FindAllSubmatchIndex(data, -1) {
			line, col := position(data, m[2])
			got[loc(rel, line, col)] = string(data[m[2]:m[3]])
		}
	})
	compare(t, "the GitHub pattern", f.want(github), got)
}

// TestKeygateScanIsTheVerifier: keygate scan on the same fixtures reports
// the keys whose checksum is valid, wherever they are glued, and none of
// the checksum-broken strings the shape rules report.
func TestKeygateScanIsTheVerifier(t *testing.T) {
	f := newFixture(t)
	res, err := leakscan.New(leakscan.Config{}).Paths(context.Background(), []string{f.dir}, nil)
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("scan: %v %v", err, res.Errors)
	}
	got := map[string]string{}
	for _, fd := range res.Findings {
		rel, _ := filepath.Rel(f.dir, fd.Path)
		l := loc(filepath.ToSlash(rel), fd.Line, fd.Column)
		got[l] = "?" // a finding at no spot
		for _, sp := range f.spots {
			if loc(sp.file, sp.line, sp.column) == l && leakscan.Mask(sp.secret) == fd.Masked && strings.Contains(sp.secret, fd.KeyID) {
				got[l] = sp.secret
			}
		}
	}
	compare(t, "keygate scan", f.want(keygate), got)
}

// walk calls fn with every file under dir (slash-separated, relative).
func walk(t *testing.T, dir string, fn func(rel string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fn(filepath.ToSlash(rel), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// position is the 1-based line and column of offset in data.
func position(data []byte, offset int) (line, column int) {
	line = bytes.Count(data[:offset], []byte("\n")) + 1
	return line, offset - bytes.LastIndexByte(data[:offset], '\n')
}

// section is the first fenced block after heading.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("no %q in github-secret-scanning.md", heading)
	}
	lines := blockLines(t, doc[i:], "```")
	if len(lines) != 1 {
		t.Fatalf("%s: want a one-line block, got %d lines", heading, len(lines))
	}
	return lines[0]
}

// blockLines are the lines of the first fenced block opening with fence.
func blockLines(t *testing.T, doc, fence string) []string {
	t.Helper()
	i := strings.Index(doc, fence)
	if i < 0 {
		t.Fatalf("no %s block", fence)
	}
	rest := doc[i:]
	rest = rest[strings.Index(rest, "\n")+1:]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatalf("%s block not closed", fence)
	}
	return strings.Split(strings.TrimSuffix(rest[:end], "\n"), "\n")
}
