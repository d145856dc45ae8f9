package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScanRevoke: keygate serve allows a key (and caches it for a
// minute); keygate scan --revoke finds it in a file, revokes it with
// reason "leaked" and exits 1; the server denies it within 2 s (the file
// store's watch, or Vault's change journal), a revoked key in the same
// file is left alone, and a second scan finds nothing live (exit 0).
func TestScanRevoke(t *testing.T) {
	for _, store := range []string{"file", "vault"} {
		t.Run(store, func(t *testing.T) {
			f := &leakFixture{} // its ring: every key, for the no-raw-key checks
			ring := &f.ring
			env := envMap{"KEYGATE_STORE": "file:" + filepath.Join(t.TempDir(), "keys.yaml")}
			if store == "vault" {
				env = vaultEnv(t)
			}
			leaked := ring.add(createKey(t, env, "--tenant", "acme"))
			earlier := ring.add(createKey(t, env, "--tenant", "acme"))
			kept := ring.add(createKey(t, env, "--tenant", "acme"))
			mustCLI(t, env, "keys", "revoke", earlier.ID, "--reason", "rotated")
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "leak.env"), []byte("A="+leaked.Key+"\nB="+earlier.Key+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}

			s := serve(t, env, ring.all, "--found-ttl", "1m") // default --journal-poll 1s
			for _, k := range []created{leaked, kept} {
				if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
					t.Fatalf("before the scan: %v", o)
				}
			}

			out, stderr, code := f.scanCLI(t, env, "", "--revoke", "--json", dir)
			revokedAt := time.Now()
			if code != 1 {
				t.Errorf("scan --revoke: exit %d, want 1 (live keys were found)\n%s", code, stderr)
			}
			var rep scanReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Summary.Revoked != 1 || len(rep.Findings) != 2 || !rep.Findings[0].Revoked || rep.Findings[1].Revoked ||
				rep.Findings[0].KeyID != leaked.ID || rep.Findings[1].Status != "revoked" {
				t.Errorf("report: %+v", rep)
			}
			if !strings.Contains(stderr, `revoked 1 key(s) with reason "leaked"`) {
				t.Errorf("stderr: %s", stderr)
			}

			took := eventually(t, 2*time.Second, "the leaked key denied", func() bool {
				return s.decide(t, leaked.Key, checkFlags{}).reason == "revoked_key"
			})
			t.Logf("%s store: denied %s after scan --revoke returned (%s since)", store, took.Round(10*time.Millisecond),
				time.Since(revokedAt).Round(10*time.Millisecond))
			if o := s.decide(t, kept.Key, checkFlags{}); o.status != 200 {
				t.Errorf("a key not in the file: %v", o)
			}
			show := mustCLI(t, env, "keys", "show", "--json", leaked.ID)
			if !strings.Contains(show, `"revoked_reason":"leaked"`) {
				t.Errorf("keys show: %s", redact(show))
			}
			show = mustCLI(t, env, "keys", "show", "--json", earlier.ID)
			if !strings.Contains(show, `"revoked_reason":"rotated"`) {
				t.Errorf("the earlier revoked key was revoked again: %s", redact(show))
			}

			if _, _, code := f.scanCLI(t, env, "", dir); code != 0 {
				t.Errorf("second scan: exit %d, want 0", code)
			}
		})
	}
}

// TestScanGitHistory: a key committed and deleted in the next commit is
// found by --git with the commit that added it, and keeps the exit status
// at 1 while it is active; the working tree alone has no key.
func TestScanGitHistory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	f := &leakFixture{}
	env := envMap{"KEYGATE_STORE": "file:" + filepath.Join(t.TempDir(), "keys.yaml")}
	k := f.ring.add(createKey(t, env, "--tenant", "acme"))
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com",
			"-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v: %s", args[0], err, redact(string(out)))
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(repo, "settings.py"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("DEBUG = False\nKEYGATE_KEY = \"" + k.Key + "\"\n")
	git("add", ".")
	git("commit", "-q", "-m", "settings")
	added := git("rev-parse", "HEAD")
	write("DEBUG = False\nKEYGATE_KEY = os.environ[\"KEYGATE_KEY\"]\n")
	git("commit", "-q", "-am", "key from the environment")

	if _, _, code := f.scanCLI(t, env, "", repo); code != 0 {
		t.Errorf("working tree: exit %d, want 0", code)
	}
	out, stderr, code := f.scanCLI(t, env, "", "--git", repo)
	if code != 1 {
		t.Errorf("--git: exit %d, want 1\n%s", code, stderr)
	}
	want := added[:12] + "  settings.py:2:16  " + k.ID
	if !strings.Contains(out, want) || !strings.Contains(out, "active") {
		t.Errorf("--git output lacks %q:\n%s", want, out)
	}
	out, _, _ = f.scanCLI(t, env, "", "--git", repo, "--json")
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Findings) != 1 || rep.Findings[0].Commit != added {
		t.Errorf("--git --json: %v %+v", err, rep.Findings)
	}
}
