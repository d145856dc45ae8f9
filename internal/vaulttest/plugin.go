package vaulttest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// PluginServer starts a dev server of one test's own that loads plugins
// from pluginDir (`vault server -dev -dev-plugin-dir=pluginDir`, which also
// sets its plugin_directory, so plugins there can be registered by
// command name). It is killed, and its temp dir removed, when t ends. It
// skips t without the Vault binary (fails when $CI is set), like Server.
// Dev mode registers the files in pluginDir at start under their file names;
// a plugin built after the start is registered as on a real cluster, with
// Sys().RegisterPlugin (type, name, version and SHA-256).
func PluginServer(t testing.TB, pluginDir string) *Vault {
	t.Helper()
	bin := requireBinary(t)
	abs, err := filepath.Abs(pluginDir)
	if err != nil {
		t.Fatalf("vaulttest: plugin dir: %v", err)
	}
	token := make([]byte, 16)
	rand.Read(token)
	s := &Vault{Token: "root-" + hex.EncodeToString(token), bin: bin, dir: t.TempDir(), extra: []string{"-dev-plugin-dir=" + abs}}
	t.Cleanup(s.Kill) // before t.TempDir's removal: cleanups run last-in first-out
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			s.port, s.Addr = port, "http://127.0.0.1:"+port
			err = s.launch()
		}
		if err == nil {
			return s
		}
		if attempt == 4 || !errors.Is(err, errPortTaken) {
			t.Fatalf("vaulttest: plugin server: %v", err)
		}
	}
}

// Dir is the server's private directory (its HOME and vault.log): a place
// for files the server writes, such as a file audit device's log.
func (s *Vault) Dir() string { return s.dir }

// BuildPlugin builds the Go main package pkg (an import path) into
// dir/name and returns the binary's SHA-256 in hex, as `vault plugin
// register -sha256` wants it.
func BuildPlugin(t testing.TB, pkg, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vaulttest: go build %s: %v\n%s", pkg, err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
