// Package vaulttest runs one real Vault dev server per test binary.
//
// Use it from TestMain so the server is stopped (and its temp dir removed)
// when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
//
// The server starts on first use. The binary is $KEYGATE_VAULT_BIN or
// <repo>/.tools/vault (built by scripts/vault.sh); without it tests skip,
// or fail when $CI is set. The server listens on loopback only, uses a
// random root token and a private HOME, and is killed with the test
// process even if that dies abruptly.
//
// TLSServer starts a further server of one test's own with a TLS listener
// (optionally requiring a client certificate) and throwaway CAs. Cluster
// starts an n-node cluster with integrated Raft storage (real `vault server
// -config`, not dev mode) of one test's own.
package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

const startTimeout = 30 * time.Second

var (
	mu       sync.Mutex
	shared   *Vault
	startErr error // a failed start is not retried by later tests
)

// Main runs the tests and then stops the server if one was started. Its
// result is the exit code for os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Kill()
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "vaulttest: %v\n", err)
		}
		shared = nil
	}
	return code
}

// Vault is a running Vault dev server. KV v2 is mounted at "secret/".
// Tests share it: use paths unique to each test.
type Vault struct {
	Addr  string // http://127.0.0.1:PORT
	Token string // root token

	bin   string
	dir   string // temp dir: HOME and vault.log
	port  string
	extra []string // more `vault server` arguments (TLSServer's -config)

	proc      process
	mu        sync.Mutex
	unsealKey string // from the banner of the current run
}

// Server returns the shared server, starting it on first use, and
// restarting it (empty) if an earlier test killed it.
func Server(t testing.TB) *Vault {
	t.Helper()
	bin := requireBinary(t)
	mu.Lock()
	defer mu.Unlock()
	if shared == nil && startErr == nil {
		shared, startErr = start(bin)
	}
	if startErr != nil {
		t.Fatalf("vaulttest: %v", startErr)
	}
	if !shared.running() {
		t.Logf("vaulttest: Vault was left stopped; restarting it (dev-mode data is lost)")
		shared.Restart(t)
	}
	return shared
}

// requireBinary returns the Vault binary, or skips t without one (fails
// it when $CI is set).
func requireBinary(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("vaulttest: %v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("vaulttest: %v", err)
	}
	return bin
}

// binary finds the Vault binary: $KEYGATE_VAULT_BIN or <repo>/.tools/vault.
func binary() (string, error) {
	if bin := os.Getenv("KEYGATE_VAULT_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("KEYGATE_VAULT_BIN: %w (build one with scripts/vault.sh)", err)
		}
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".tools", "vault")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no Vault binary at %s: run scripts/vault.sh (or set KEYGATE_VAULT_BIN)", bin)
	}
	return bin, nil
}

// repoRoot walks up from the working directory to the directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// start launches a server on a free port, trying new ports if one is taken
// between choosing and binding it.
func start(bin string) (*Vault, error) {
	dir, err := os.MkdirTemp("", "keygate-vault-")
	if err != nil {
		return nil, err
	}
	token := make([]byte, 16)
	rand.Read(token)
	s := &Vault{Token: "root-" + hex.EncodeToString(token), bin: bin, dir: dir}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			s.port = port
			s.Addr = "http://127.0.0.1:" + port
			err = s.launch()
		}
		if err == nil {
			return s, nil
		}
		if attempt == 4 || !errors.Is(err, errPortTaken) {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

var errPortTaken = errors.New("port already in use")

// launch starts the process on s.port and waits until it serves KV reads.
func (s *Vault) launch() error {
	logPath := filepath.Join(s.dir, "vault.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	offset, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "==== vaulttest: starting %s on 127.0.0.1:%s at %s\n", s.bin, s.port, time.Now().Format(time.RFC3339))
	args := append([]string{"server", "-dev",
		"-dev-root-token-id=" + s.Token,
		"-dev-listen-address=127.0.0.1:" + s.port,
		"-dev-no-store-token"}, s.extra...)
	done, err := s.proc.start(s.bin, args, s.dir, logFile)
	if err != nil {
		return err
	}
	if err := s.waitReady(done, logPath, offset); err != nil {
		s.Kill()
		tail := logTail(logPath, 40)
		if strings.Contains(tail, "address already in use") {
			return fmt.Errorf("127.0.0.1:%s: %w", s.port, errPortTaken)
		}
		return fmt.Errorf("vault dev server on %s: %w\n---- %s (last lines) ----\n%s", s.Addr, err, logPath, tail)
	}
	return nil
}

// childEnv is the parent's environment without VAULT_* settings, with HOME
// in the temp dir so nothing touches ~/.vault-token.
func childEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+dir, "VAULT_LOG_LEVEL=info")
}

// waitReady polls /v1/sys/health and a KV v2 read until both answer, and
// the log (from offset) until the dev banner with the unseal key is out:
// Vault prints it about a second after it starts answering, when the dev
// setup is complete.
func (s *Vault) waitReady(done <-chan struct{}, logPath string, offset int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		last = s.probe(ctx, client)
		if last == nil {
			last = s.readUnsealKey(logPath, offset)
		}
		if last == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("vault exited during startup (last probe: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", startTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Vault) probe(ctx context.Context, client *http.Client) error {
	for _, path := range []string{"/v1/sys/health", "/v1/secret/config"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Addr+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("X-Vault-Token", s.Token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
		}
	}
	return nil
}

func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (s *Vault) running() bool { return s.proc.running() }

// Kill stops Vault abruptly (SIGKILL) and waits for it to exit, freeing
// its address. Tests that kill Vault must not run in parallel with tests
// using it; Restart (or the next Server call) brings it back.
func (s *Vault) Kill() { s.proc.kill() }

// Restart starts Vault again on the same address with the same root token.
// Dev mode keeps everything in memory, so the restarted server is empty:
// every secret written before Kill is gone (KV v2 is mounted at secret/
// again). Restart kills a server that is still running first.
func (s *Vault) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.launch(); !errors.Is(err, errPortTaken) {
			break
		}
		time.Sleep(100 * time.Millisecond) // same address: wait for the port
	}
	if err != nil {
		t.Fatalf("vaulttest: restart: %v", err)
	}
}

// Client returns a vault/api client for s with the root token, a 10 s
// timeout and no retries. Environment settings (VAULT_ADDR, VAULT_TOKEN,
// VAULT_NAMESPACE, ...) are overridden.
func (s *Vault) Client(t testing.TB) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		t.Fatalf("vaulttest: client config: %v", cfg.Error)
	}
	cfg.Address, cfg.AgentAddress = s.Addr, ""
	cfg.Timeout, cfg.MaxRetries = 10*time.Second, 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatalf("vaulttest: client: %v", err)
	}
	c.SetToken(s.Token)
	c.ClearNamespace()
	return c
}
