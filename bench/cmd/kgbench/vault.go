package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/keygate/keygate/bench/proc"
	"github.com/keygate/keygate/vault"
)

// keysPath is where keygate keeps records with the default --vault-mount
// and --vault-base-path, as Vault's audit log names the path.
var keysPath = func() string {
	c := vault.DefaultConfig()
	return c.Mount + "/data/" + c.BasePath + "/keys/"
}()

// enableAudit turns on a file audit device writing to path.
func enableAudit(ctx context.Context, v *proc.Vault, path string) error {
	return v.Call(ctx, http.MethodPut, "/v1/sys/audit/bench", map[string]any{
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
