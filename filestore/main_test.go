package filestore

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	idA = "4VvXJ3tq9aBz"
	idB = "7TbqYw2LmN0c"

	hashA = "sha256:" + "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	hashB = "hmac-sha256:v1:" + "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

var pepper1 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// validFile is a hand-written file using most of the format.
var validFile = `# keygate file store
pepper:
  current: 1
  versions: {"1": "` + pepper1 + `"}
keys:
  ` + idA + `:
    hash: ` + hashA + `
    tenant: acme
    status: active
    scopes: [orders:read, orders:write]
    expires_at: 2030-01-02T15:04:05Z
    headers: {x-plan: gold}
  ` + idB + `:
    hash: ` + hashB + `
    tenant: globex
    status: revoked
versions:
  ` + idB + `: 4
`

// writeTestFile replaces path with data atomically, as an editor or a
// ConfigMap update would, so a poller never sees half a file.
func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".test-tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newFile writes data to a fresh key file and returns its path.
func newFile(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	writeTestFile(t, path, data)
	return path
}

func openFile(t *testing.T, data string) (*Store, string) {
	t.Helper()
	path := newFile(t, data)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, path
}

// logBuffer collects a text log safely from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventually polls cond until it holds, failing after 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countLines(s, substr string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}
