package proc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Vault is a Vault dev server on a random loopback port (KV v2 at
// secret/), in-memory, with a random root token.
type Vault struct {
	*Proc
	Addr, Token string
}

// StartVault starts bin as a dev server and waits until KV v2 answers.
func StartVault(ctx context.Context, bin, dir string) (*Vault, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	home := filepath.Join(dir, "vault-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	v := &Vault{Addr: "http://" + addr, Token: "root-" + hex.EncodeToString(tok)}
	v.Proc, err = Start(dir, "vault", []string{"HOME=" + home, "VAULT_ADDR=", "VAULT_TOKEN="}, bin,
		"server", "-dev", "-dev-root-token-id="+v.Token, "-dev-listen-address="+addr)
	if err != nil {
		return nil, err
	}
	if err := v.waitReady(ctx); err != nil {
		v.Stop()
		return nil, err
	}
	return v, nil
}

// Env is what keygate needs to use this server.
func (v *Vault) Env() []string {
	return []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token}
}

func (v *Vault) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := v.Call(ctx, http.MethodGet, "/v1/sys/health", nil)
		if err == nil {
			err = v.Call(ctx, http.MethodGet, "/v1/secret/config", nil)
		}
		if err == nil {
			return nil
		}
		if v.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("vault dev server not ready: %v (see %s)", err, v.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Call sends one API request with the root token (body as JSON, if not
// nil), within 5 s, and wants a 2xx answer.
func (v *Vault) Call(ctx context.Context, method, path string, body any) error {
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
	req, err := http.NewRequestWithContext(ctx, method, v.Addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", v.Token)
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
