package main

import (
	"context"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// leakFixture is a file store with keys in every status, and a tree of
// files that holds them and near misses of them.
type leakFixture struct {
	env                      envMap
	active, revoked, expired created
	unknown, forged          string   // valid checksums, never stored (forged: the active key's id)
	nearMisses               []string // key-shaped, not keys
	ring                     keyring  // every raw key and near miss, for the no-raw-key checks
	tree, dead, clean        string   // tree: all of them; dead: only revoked/expired/unknown keys; clean: none
}

func newLeakFixture(t *testing.T) *leakFixture {
	t.Helper()
	f := &leakFixture{env: envMap{"KEYGATE_STORE": "file:" + filepath.Join(t.TempDir(), "keys.yaml")}}
	expiresAt := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	f.expired = f.ring.add(createKey(t, f.env, "--tenant", "acme", "--expires-at", expiresAt))
	f.active = f.ring.add(createKey(t, f.env, "--tenant", "acme"))
	f.revoked = f.ring.add(createKey(t, f.env, "--tenant", "acme"))
	mustCLI(t, f.env, "keys", "revoke", f.revoked.ID, "--reason", "rotated")
	format, _ := policy.NewFormat("kg")
	f.unknown, _, _ = format.Generate()
	f.forged = checksummed("kg_" + f.active.ID + strings.Repeat("Q", policy.SecretLen))
	f.nearMisses = []string{
		f.active.Key[:len(f.active.Key)-1] + flip(f.active.Key[len(f.active.Key)-1]), // checksum
		f.active.Key + "x", // one too long
		f.active.Key[:len(f.active.Key)-1],
		"kg_" + strings.Repeat("x", 50),
	}
	f.ring.add(created{Key: f.unknown})
	f.ring.add(created{Key: f.forged})
	for _, k := range f.nearMisses {
		f.ring.add(created{Key: k})
	}

	f.tree, f.dead, f.clean = t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(f.tree, ".env", "KEYGATE_API_KEY="+f.active.Key+"\n")
	write(f.tree, "config/app.json", `{"api_key": "`+f.revoked.Key+`", "old": "`+f.expired.Key+`"}`+"\n")
	write(f.tree, "deploy/values.yaml", "keygate:\n  key: "+f.unknown+"\n  other: "+f.forged+"\n")
	write(f.tree, "docs/curl.md", "curl 'https://api.example.com/v1/orders?api_key="+f.active.Key+"&page=2'\n")
	write(f.tree, "misses.txt", strings.Join(f.nearMisses, "\n")+"\n")
	write(f.tree, "logo.png", "\x89PNG\x00\x00"+f.active.Key)
	write(f.tree, ".git/config", "token = "+f.active.Key+"\n")
	write(f.dead, "a.txt", f.revoked.Key+" "+f.expired.Key+"\n"+f.unknown+"\n")
	write(f.clean, "a.txt", strings.Join(f.nearMisses, "\n"))
	if d := time.Until(time.Now().Add(1600 * time.Millisecond)); d > 0 {
		time.Sleep(d) // until the expiring key has expired
	}
	return f
}

// checksummed appends a valid checksum to "prefix_" + 44 characters.
func checksummed(signed string) string {
	sum := uint64(crc32.ChecksumIEEE([]byte(signed)))
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var enc [6]byte
	for i := len(enc) - 1; i >= 0; i-- {
		enc[i] = digits[sum%62]
		sum /= 62
	}
	return signed + string(enc[:])
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// scanCLI runs keygate scan with stdin and returns its output and exit
// status; every output is checked for raw keys.
func (f *leakFixture) scanCLI(t *testing.T, env envMap, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, append([]string{"scan"}, args...), env.get, strings.NewReader(stdin), &out, &errOut)
	code = exitCode(err, &errOut)
	for _, k := range f.ring.all() {
		if strings.Contains(out.String()+errOut.String(), k) {
			t.Errorf("keygate scan %v printed a raw key or near miss", args)
		}
	}
	if keyShape.MatchString(out.String() + errOut.String()) {
		t.Errorf("keygate scan %v printed something shaped like a key", args)
	}
	return out.String(), errOut.String(), code
}

// statusRE reads a table row: location, key id, masked key, status.
var statusRE = regexp.MustCompile(`(?m)^(\S+)\s+([0-9A-Za-z]{12})\s+(\S+)\s+(\S+)\s+(\S+)$`)

func tableRows(out string) map[string]string {
	rows := map[string]string{}
	for _, m := range statusRE.FindAllStringSubmatch(out, -1) {
		rows[m[1]] = m[2] + " " + m[4] + " " + m[5]
	}
	return rows
}

// TestScanCLI: the table, statuses and exit status for each kind of scan.
func TestScanCLI(t *testing.T) {
	f := newLeakFixture(t)
	noStore := envMap{}
	rel := func(p string) string { return filepath.Join(f.tree, p) }
	full := map[string]string{
		rel(".env") + ":1:17":               f.active.ID + " active -",
		rel("config/app.json") + ":1:14":    f.revoked.ID + " revoked -",
		rel("config/app.json") + ":1:78":    f.expired.ID + " expired -",
		rel("deploy/values.yaml") + ":2:8":  f.unknown[3:15] + " unknown -",
		rel("deploy/values.yaml") + ":3:10": f.active.ID + " unknown -", // forged: the id, not the key
		rel("docs/curl.md") + ":1:49":       f.active.ID + " active -",
	}
	for _, tc := range []struct {
		name     string
		env      envMap
		stdin    string
		args     []string
		wantCode int
		want     map[string]string // table rows; nil: not checked
		stderr   string            // in stderr
	}{
		{name: "tree with store", env: f.env, args: []string{f.tree}, wantCode: 1, want: full},
		{name: "tree without store: every key counts as live", env: noStore, args: []string{rel(".env")}, wantCode: 1,
			want: map[string]string{rel(".env") + ":1:17": f.active.ID + " unchecked -"}},
		{name: "only dead keys", env: f.env, args: []string{f.dead}, wantCode: 0, want: map[string]string{
			filepath.Join(f.dead, "a.txt") + ":1:1":  f.revoked.ID + " revoked -",
			filepath.Join(f.dead, "a.txt") + ":1:55": f.expired.ID + " expired -",
			filepath.Join(f.dead, "a.txt") + ":2:1":  f.unknown[3:15] + " unknown -",
		}},
		{name: "near misses only", env: f.env, args: []string{f.clean}, wantCode: 0, want: map[string]string{}},
		{name: "stdin", env: f.env, stdin: "x\nAuthorization: Bearer " + f.active.Key + "\n", args: []string{"-"}, wantCode: 1,
			want: map[string]string{"-:2:23": f.active.ID + " active -"}},
		{name: "include .git", env: f.env, args: []string{"--include-git", filepath.Join(f.tree, ".git")}, wantCode: 1,
			want: map[string]string{rel(".git/config") + ":1:9": f.active.ID + " active -"}},
		{name: "missing path", env: f.env, args: []string{f.dead, filepath.Join(f.tree, "nope")}, wantCode: 2, stderr: "no such file"},
		{name: "json and sarif", env: f.env, args: []string{"--json", "--sarif", f.tree}, wantCode: 2, stderr: "give one"},
		{name: "revoke without store", env: noStore, args: []string{"--revoke", f.tree}, wantCode: 2, stderr: "--revoke needs the store"},
		{name: "bad size", env: f.env, args: []string{"--max-file-size", "lots", f.tree}, wantCode: 2, stderr: "max-file-size"},
		{name: "size from the environment", env: f.env.with("KEYGATE_MAX_FILE_SIZE", "10B"), args: []string{f.tree}, wantCode: 0,
			want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := f.scanCLI(t, tc.env, tc.stdin, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, stderr)
			}
			if tc.want != nil {
				got := tableRows(out)
				for loc, row := range tc.want {
					if got[loc] != row {
						t.Errorf("%s: %q, want %q", loc, got[loc], row)
					}
				}
				if len(got) != len(tc.want) {
					t.Errorf("%d rows, want %d:\n%s", len(got), len(tc.want), out)
				}
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
		})
	}
}

// TestScanJSONAndSARIF: the JSON document and SARIF log hold every
// finding, with ids, masked keys and statuses, and no raw key.
func TestScanJSONAndSARIF(t *testing.T) {
	f := newLeakFixture(t)
	out, _, code := f.scanCLI(t, f.env, "", "--json", f.tree)
	if code != 1 {
		t.Errorf("--json: exit %d, want 1", code)
	}
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v", err)
	}
	if rep.Summary.Findings != 6 || rep.Summary.Live != 2 || rep.Summary.Keys != 4 || !rep.Summary.Store ||
		rep.Summary.ByStatus["unknown"] != 2 || rep.Stats.Files != 5 || rep.Stats.SkippedBinary != 1 {
		t.Errorf("summary %+v stats %+v", rep.Summary, rep.Stats)
	}
	for _, s := range rep.Findings {
		if s.Masked != policyMask(s.KeyID, f) && s.Status != "unknown" {
			t.Errorf("%s:%d: masked %q", s.Path, s.Line, s.Masked)
		}
	}

	out, _, code = f.scanCLI(t, f.env, "", "--sarif", f.tree)
	if code != 1 {
		t.Errorf("--sarif: exit %d, want 1", code)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatalf("--sarif output does not parse: %v", err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Tool.Driver.Rules) != 1 || len(log.Runs[0].Results) != 6 {
		t.Fatalf("SARIF: version %q, %d runs", log.Version, len(log.Runs))
	}
	levels := map[string]int{}
	for _, r := range log.Runs[0].Results {
		levels[r.Level]++
		if r.RuleID != log.Runs[0].Tool.Driver.Rules[0].ID || len(r.Locations) != 1 ||
			r.Locations[0].PhysicalLocation.Region.StartLine < 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
			t.Errorf("SARIF result %+v", r)
		}
	}
	if levels["error"] != 2 || levels["warning"] != 2 || levels["note"] != 2 {
		t.Errorf("SARIF levels %v, want 2 error (active), 2 warning (revoked, expired), 2 note (unknown)", levels)
	}
}

// policyMask is the masked form of the fixture's key with id.
func policyMask(id string, f *leakFixture) string {
	for _, k := range []created{f.active, f.revoked, f.expired} {
		if k.ID == id {
			return k.Key[:7] + "…" + k.Key[len(k.Key)-4:]
		}
	}
	return ""
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"10MiB": 10 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "10MB": 10e6, "1000": 1000, "7B": 7} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5MiB", "MiB", "10 parsecs", "99999999999GiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("%q: accepted as %d", in, b)
		}
	}
	b := byteSize(10 << 20)
	if b.String() != "10MiB" {
		t.Errorf("String %q", b.String())
	}
}
