package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// vaultServer is a Vault dev server on a random loopback port (KV v2 at
// secret/), in-memory, with a random root token.
type vaultServer struct {
	*proc
	addr, token string
}

// keysPath is where keygate keeps records (defaults --vault-mount secret,
// --vault-base-path keygate), as Vault's audit log names the path.
const keysPath = "secret/data/keygate/keys/"

func startVault(ctx context.Context, bin, dir string) (*vaultServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	home := filepath.Join(dir, "vault-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	v := &vaultServer{addr: "http://" + addr, token: "root-" + hex.EncodeToString(tok)}
	v.proc, err = startProc(dir, "vault", []string{"HOME=" + home, "VAULT_ADDR=", "VAULT_TOKEN="}, bin,
		"server", "-dev", "-dev-root-token-id="+v.token, "-dev-listen-address="+addr)
	if err != nil {
		return nil, err
	}
	if err := v.waitReady(ctx); err != nil {
		v.stop()
		return nil, err
	}
	return v, nil
}

// env is what keygate needs to use this server.
func (v *vaultServer) env() []string {
	return []string{"VAULT_ADDR=" + v.addr, "VAULT_TOKEN=" + v.token}
}

func (v *vaultServer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := v.call(ctx, http.MethodGet, "/v1/sys/health", nil)
		if err == nil {
			err = v.call(ctx, http.MethodGet, "/v1/secret/config", nil)
		}
		if err == nil {
			return nil
		}
		if v.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("vault dev server not ready: %v (see %s)", err, v.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (v *vaultServer) call(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, v.addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", v.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// enableAudit turns on a file audit device writing to path.
func (v *vaultServer) enableAudit(ctx context.Context, path string) error {
	return v.call(ctx, http.MethodPut, "/v1/sys/audit/bench", map[string]any{
		"type": "file", "options": map[string]string{"file_path": path},
	})
}

// auditReads counts read requests on keygate's key records in the audit
// log after offset: all of them, and those of one key id (if id != "").
func auditReads(path string, offset int64, id string) (all, ofID int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Operation string `json:"operation"`
				Path      string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type != "request" || e.Request.Operation != "read" {
			continue
		}
		if strings.HasPrefix(e.Request.Path, keysPath) {
			all++
			if id != "" && e.Request.Path == keysPath+id {
				ofID++
			}
		}
	}
	return all, ofID, sc.Err()
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// issued is a key created with the keygate CLI. key is secret.
type issued struct{ id, key string }

// createKey runs `keygate keys create --json` and keeps the id and key
// (the CLI's output is never printed).
func createKey(ctx context.Context, keygate, store string, env []string, args ...string) (issued, error) {
	args = append([]string{"keys", "create", "--store", store, "--tenant", "bench", "--json"}, args...)
	cmd := exec.CommandContext(ctx, keygate, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return issued{}, fmt.Errorf("keygate keys create: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var k struct{ ID, Key string }
	if err := json.Unmarshal(out, &k); err != nil || k.ID == "" || k.Key == "" {
		return issued{}, fmt.Errorf("keygate keys create: unexpected output (%d bytes)", len(out))
	}
	return issued{k.ID, k.Key}, nil
}

// createKeys issues n keys in parallel.
func createKeys(ctx context.Context, keygate, store string, env []string, n, parallel int, args ...string) ([]issued, error) {
	keys := make([]issued, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			keys[i], errs[i] = createKey(ctx, keygate, store, env, args...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}
