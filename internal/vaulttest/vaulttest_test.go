package vaulttest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestServerKillRestart(t *testing.T) {
	v := Server(t)
	if v2 := Server(t); v2 != v {
		t.Fatal("Server returned a second server")
	}
	if !strings.HasPrefix(v.Addr, "http://127.0.0.1:") || v.Token == "" {
		t.Fatalf("Addr %q, token %q", v.Addr, v.Token)
	}
	ctx := context.Background()
	kv := v.Client(t).KVv2("secret")
	if _, err := kv.Put(ctx, "vaulttest/x", map[string]any{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.dir + "/.vault-token"); err == nil {
		t.Error("Vault wrote a token file into HOME")
	}

	addr := v.Addr
	v.Kill()
	if _, err := kv.Get(ctx, "vaulttest/x"); err == nil {
		t.Fatal("read succeeded after Kill")
	}
	v.Restart(t)
	if v.Addr != addr {
		t.Fatalf("Restart moved from %s to %s", addr, v.Addr)
	}
	if _, err := kv.Get(ctx, "vaulttest/x"); err == nil {
		t.Error("dev data survived a restart")
	}
	if _, err := kv.Put(ctx, "vaulttest/x", map[string]any{"a": "b"}); err != nil {
		t.Fatalf("KV after restart: %v", err)
	}

	v.Kill() // left stopped: the next Server call restarts it
	if Server(t) != v || !v.running() {
		t.Error("Server did not restart a killed server")
	}
}

func TestSealUnseal(t *testing.T) {
	v := Server(t)
	v.Seal(t)
	if st, err := v.Client(t).Sys().SealStatus(); err != nil || !st.Sealed {
		t.Fatalf("after Seal: %+v, %v", st, err)
	}
	v.Unseal(t)
	if _, err := v.Client(t).KVv2("secret").Put(context.Background(), "vaulttest/y", map[string]any{"a": "b"}); err != nil {
		t.Fatalf("KV after Unseal: %v", err)
	}
}

// recorder is a testing.TB that records Skipf and Fatalf.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, args ...any) {
	r.skipped = fmt.Sprintf(f, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(f string, args ...any) {
	r.failed = fmt.Sprintf(f, args...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("KEYGATE_VAULT_BIN", t.TempDir()+"/no-vault")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		var wg sync.WaitGroup
		wg.Go(func() { Server(r) })
		wg.Wait()
		msg := r.skipped + r.failed
		if ci == "" && r.skipped == "" || ci != "" && r.failed == "" || !strings.Contains(msg, "scripts/vault.sh") {
			t.Errorf("CI=%q: skipped %q, failed %q", ci, r.skipped, r.failed)
		}
	}
}

func TestBinaryDefaultPath(t *testing.T) {
	t.Setenv("KEYGATE_VAULT_BIN", "")
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/go.mod", []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir+"/a/b", 0o755)
	t.Chdir(dir + "/a/b")
	_, err := binary()
	if err == nil || !strings.Contains(err.Error(), dir+"/.tools/vault") || !strings.Contains(err.Error(), "scripts/vault.sh") {
		t.Errorf("binary() = %v, want it to name %s/.tools/vault and scripts/vault.sh", err, dir)
	}
}
