package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkIn runs `keygate check` in-process with stdin.
func checkIn(t *testing.T, env envMap, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"check"}, args...), env.get, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// keyFileWith writes content to a fresh file and returns its path.
func keyFileWith(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := writeFileBytes(path, []byte(content)); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckKeySources: the key reaches keygate from --key-file, --key -
// (stdin) and KEYGATE_KEY / KEYGATE_KEY_FILE, so it need not be on argv;
// a bad source is an error naming its flag that never quotes the key.
func TestCheckKeySources(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme"))
	other := ring.add(createKey(t, env, "--tenant", "globex"))
	s := serve(t, env, ring.all)
	addr := []string{"--addr", s.addr}

	allow := []struct {
		name  string
		env   envMap
		stdin string
		args  []string
	}{
		{"--key-file, trailing newline", nil, "", []string{"--key-file", keyFileWith(t, k.Key+"\n")}},
		{"--key-file, no newline", nil, "", []string{"--key-file", keyFileWith(t, k.Key)}},
		{"--key-file, CRLF and trailing blanks", nil, "", []string{"--key-file", keyFileWith(t, k.Key+" \t\r\n")}},
		{"KEYGATE_KEY_FILE", envMap{"KEYGATE_KEY_FILE": keyFileWith(t, k.Key+"\n")}, "", nil},
		{"--key - reads one line of stdin", nil, k.Key + "\n", []string{"--key", "-"}},
		{"--key - without a newline", nil, k.Key, []string{"--key", "-"}},
		{"KEYGATE_KEY", envMap{"KEYGATE_KEY": k.Key}, "", nil},
		{"KEYGATE_KEY=- reads stdin", envMap{"KEYGATE_KEY": "-"}, k.Key + "\r\n", nil},
		{"--key - wins over KEYGATE_KEY", envMap{"KEYGATE_KEY": other.Key[:len(other.Key)-1]}, k.Key + "\n", []string{"--key", "-"}},
	}
	for _, tt := range allow {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := checkIn(t, env.with(flatten(tt.env)...), tt.stdin, append(addr, tt.args...)...)
			if err != nil || !strings.Contains(out, "ALLOW") || !strings.Contains(out, "x-keygate-key-id: "+k.ID) {
				t.Errorf("err %v, output:\n%s", err, redact(out+stderr))
			}
			assertNoKey(t, out+stderr, err, k.Key, other.Key)
		})
	}
	checkKeySourceErrors(t, s.addr, k.Key, other.Key)
}

// checkKeySourceErrors: each bad key source fails before any request is
// sent (exit status 2), names its flag, and quotes no key.
func checkKeySourceErrors(t *testing.T, addr, key, otherKey string) {
	t.Helper()
	dir := t.TempDir()
	deny := []struct {
		name  string
		env   envMap
		stdin string
		args  []string
		want  []string
	}{
		{"empty file", nil, "", []string{"--key-file", keyFileWith(t, "")}, []string{"--key-file", "empty"}},
		{"file of blanks", nil, "", []string{"--key-file", keyFileWith(t, " \r\n")}, []string{"--key-file", "empty"}},
		{"two keys", nil, "", []string{"--key-file", keyFileWith(t, key+"\n"+otherKey+"\n")}, []string{"--key-file", "more than one line"}},
		{"key then a blank line", nil, "", []string{"--key-file", keyFileWith(t, key+"\n\n")}, []string{"--key-file", "more than one line"}},
		{"blank line then key", nil, "", []string{"--key-file", keyFileWith(t, "\n"+key)}, []string{"--key-file", "more than one line"}},
		{"huge file", nil, "", []string{"--key-file", keyFileWith(t, strings.Repeat(key, 200))}, []string{"--key-file", "not a key"}},
		{"missing file", nil, "", []string{"--key-file", filepath.Join(dir, "nope")}, []string{"--key-file", "no such file"}},
		{"the key given as the path", nil, "", []string{"--key-file", filepath.Join(dir, key)}, []string{"--key-file", "<redacted>"}},
		{"a directory", nil, "", []string{"--key-file", dir}, []string{"--key-file", "directory"}},
		{"--key and --key-file", nil, "", []string{"--key", key, "--key-file", keyFileWith(t, key)}, []string{"--key and --key-file"}},
		{"KEYGATE_KEY and --key-file", envMap{"KEYGATE_KEY": key}, "", []string{"--key-file", keyFileWith(t, otherKey)},
			[]string{"--key and --key-file", "KEYGATE_KEY"}},
		{"--key and KEYGATE_KEY_FILE", envMap{"KEYGATE_KEY_FILE": keyFileWith(t, key)}, "", []string{"--key", "-"},
			[]string{"--key and --key-file", "KEYGATE_KEY_FILE"}},
		{"--key - with empty stdin", nil, "", []string{"--key", "-"}, []string{"--key -", "empty"}},
		{"--key - with a blank line", nil, "\n" + key + "\n", []string{"--key", "-"}, []string{"--key -", "empty"}},
		{"--key - with a huge line", nil, strings.Repeat(key, 200), []string{"--key", "-"}, []string{"--key -", "not a key"}},
	}
	for _, tt := range deny {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := checkIn(t, envMap{}.with(flatten(tt.env)...), tt.stdin, append([]string{"--addr", addr}, tt.args...)...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", redact(out))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %s", w, redact(err.Error()))
				}
			}
			if code := exitCode(err, &syncBuffer{}); code != exitError || out != "" {
				t.Errorf("exit code %d, output %q; want %d and nothing sent", code, redact(out), exitError)
			}
			assertNoKey(t, out+stderr, err, key, otherKey)
		})
	}
}

func flatten(m envMap) []string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return kv
}

func assertNoKey(t *testing.T, output string, err error, keys ...string) {
	t.Helper()
	var msg string
	if err != nil {
		msg = err.Error()
	}
	for _, k := range keys {
		if strings.Contains(output+msg, k) {
			t.Errorf("a raw key appears in the output or the error")
		}
	}
	if keyShape.MatchString(output + msg) {
		t.Errorf("something shaped like a raw key appears in the output or the error")
	}
}
