package leakscan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPathsTree: a tree is walked: text files scanned, binary files,
// .git, files over the size limit and symlinks out of the tree skipped;
// stdin scanned; findings sorted; a missing path is an error, the rest
// still scanned.
func TestPathsTree(t *testing.T) {
	k1, k2, k3, out := genKey(t, "kg"), genKey(t, "kg"), genKey(t, "acme"), genKey(t, "kg")
	root, outside := t.TempDir(), t.TempDir()
	for _, d := range []string{"a/b", ".git/objects", "big"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "a/b/app.env"), "X=1\nKEY="+k1+"\n")
	writeFile(t, filepath.Join(root, "a/config.json"), `{"k":"`+k2+`"}`)
	writeFile(t, filepath.Join(root, "a/image.bin"), "\x89PNG\x00\x00"+k1)
	writeFile(t, filepath.Join(root, ".git/objects/x"), k1)
	writeFile(t, filepath.Join(root, "big/huge.txt"), strings.Repeat("x", 2000)+k1)
	writeFile(t, filepath.Join(outside, "secret.txt"), out)
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "a/link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")

	for _, tc := range []struct {
		name       string
		cfg        Config
		paths      []string
		want       []string // path:line per finding
		binary     int64
		large      int64
		errs       int
		includeGit bool
	}{
		{name: "tree", cfg: Config{MaxFileSize: 1000}, paths: []string{root, "-", missing},
			want: []string{"-:2", root + "/a/b/app.env:2", root + "/a/config.json:1"}, binary: 1, large: 1, errs: 1},
		{name: "include git and large", cfg: Config{IncludeGit: true, Workers: 1}, paths: []string{root},
			want: []string{root + "/.git/objects/x:1", root + "/a/b/app.env:2", root + "/a/config.json:1", root + "/big/huge.txt:1"}, binary: 1},
		{name: "a symlink named on the command line is followed", paths: []string{filepath.Join(root, "a/link.txt")},
			want: []string{root + "/a/link.txt:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := New(tc.cfg).Paths(context.Background(), tc.paths, strings.NewReader("stdin\n"+k3+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Findings {
				got = append(got, f.Path+":"+itoa(f.Line))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("findings\n got %v\nwant %v", got, tc.want)
			}
			if res.Stats.SkippedBinary != tc.binary || res.Stats.SkippedLarge != tc.large || len(res.Errors) != tc.errs {
				t.Errorf("skipped %d binary, %d large, %d errors (%v); want %d, %d, %d", res.Stats.SkippedBinary,
					res.Stats.SkippedLarge, len(res.Errors), res.Errors, tc.binary, tc.large, tc.errs)
			}
			if res.Stats.Files == 0 || res.Stats.Bytes == 0 {
				t.Errorf("stats %+v: want files and bytes counted", res.Stats)
			}
		})
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// gitRepo makes a repository in a temp dir; it skips without git (fails
// under CI).
func gitRepo(t *testing.T) (dir string, git func(args ...string) string) {
	t.Helper()
	if err := CheckGit(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir = t.TempDir()
	git = func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com",
			"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v: %s", args[0], err, redact(string(out)))
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	return dir, git
}

// TestHistory: a key committed and removed in a later commit is still
// found, at the commit, path and line that added it; so is a key only on
// another branch, a key in a file with spaces in its name and a key in a
// long line. Binary files in history are not scanned.
func TestHistory(t *testing.T) {
	dir, git := gitRepo(t)
	removed, onBranch, spaced, long := genKey(t, "kg"), genKey(t, "kg"), genKey(t, "kg"), genKey(t, "kg")
	write := func(name, content string) { writeFile(t, filepath.Join(dir, name), content) }

	write("config.env", "A=1\nB=2\nKEY="+removed+"\n")
	write("logo.bin", "\x00\x01"+removed)
	git("add", ".")
	git("commit", "-q", "-m", "add config")
	added := git("rev-parse", "HEAD")
	write("config.env", "A=1\nB=2\nKEY=${KEYGATE_KEY}\n")
	write("my notes.txt", "x\n\n"+spaced+"\n")
	write("long.txt", strings.Repeat("y", 3*readBufSize)+" "+long+"\n")
	git("add", ".")
	git("commit", "-q", "-m", "use the environment")
	second := git("rev-parse", "HEAD")
	git("checkout", "-q", "-b", "feature")
	write("feature.yaml", "key: "+onBranch+"\n")
	git("add", ".")
	git("commit", "-q", "-m", "feature")
	feature := git("rev-parse", "HEAD")
	git("checkout", "-q", "main")

	res, err := New(Config{}).History(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	type loc struct {
		commit, path string
		line, col    int
	}
	want := map[loc]string{
		{feature, "feature.yaml", 1, 6}:            onBranch,
		{second, "long.txt", 1, 3*readBufSize + 2}: long,
		{second, "my notes.txt", 3, 1}:             spaced,
		{added, "config.env", 3, 5}:                removed,
	}
	got := map[loc]string{}
	for _, f := range res.Findings {
		got[loc{f.Commit, f.Path, f.Line, f.Column}] = f.rawKey
	}
	for l, k := range want {
		if got[l] != k {
			t.Errorf("missing %s %s:%d:%d", l.commit[:8], l.path, l.line, l.col)
		}
	}
	if len(got) != len(want) {
		for _, f := range res.Findings {
			t.Logf("found %s", f)
		}
		t.Errorf("%d findings, want %d", len(got), len(want))
	}
	if res.Stats.Commits != 3 {
		t.Errorf("%d commits, want 3", res.Stats.Commits)
	}
}

// TestHistoryNotARepo: a directory that is not a repository is an error.
func TestHistoryNotARepo(t *testing.T) {
	if err := CheckGit(); err != nil {
		t.Skip(err)
	}
	if _, err := New(Config{}).History(context.Background(), t.TempDir()); err == nil {
		t.Error("want an error for a directory that is not a repository")
	}
}
