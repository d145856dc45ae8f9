package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestZeroTimeFlags: the zero instant reads as "unset" in a record, so a
// flag giving it must be refused, never turned silently into "no expiry"
// or "valid from always"; nothing is written.
func TestZeroTimeFlags(t *testing.T) {
	store := "file:" + filepath.Join(t.TempDir(), "keys.yaml")
	for _, flag := range []string{"--expires-at", "--not-before"} {
		for _, v := range []string{"0001-01-01T00:00:00Z", "0001-01-01T01:00:00+01:00"} {
			_, _, err := cli(t, envMap{}, "keys", "create", "--store", store, "--tenant", "acme", flag, v)
			if err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), "zero time") {
				t.Errorf("keys create %s %s: %v, want an error naming %s and the zero time", flag, v, err, flag)
			}
		}
	}
	if out := mustCLI(t, envMap{}, "keys", "list", "--store", store); strings.Contains(out, "acme") {
		t.Errorf("a key was written:\n%s", out)
	}
}
