package vault

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadSecretFile: a token, secret id or JWT file is one line of at
// most maxSecretFile bytes once surrounding whitespace is trimmed; errors
// name the file, never its content.
func TestReadSecretFile(t *testing.T) {
	full := strings.Repeat("s", maxSecretFile)
	read := []struct {
		name, content, want string
	}{
		{"one line", "s.token\n", "s.token"},
		{"exactly maxSecretFile", full, full},
		{"maxSecretFile and a newline", "\n" + full + "\r\n", full},
	}
	for _, tt := range read {
		t.Run("read/"+tt.name, func(t *testing.T) {
			got, err := readSecretFile(writeSecret(t, tt.content), "token file")
			if err != nil || got != tt.want {
				t.Errorf("readSecretFile = %d bytes, %v; want %d bytes", len(got), err, len(tt.want))
			}
		})
	}
	refused := []struct {
		name, content, want string
	}{
		{"empty", "", "empty"},
		{"only whitespace", " \n\t\n", "empty"},
		{"over maxSecretFile", full + "s", "over 65536 bytes"},
		{"two lines", "s.one\ns.two\n", "whitespace or control"},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			path := writeSecret(t, tt.content)
			got, err := readSecretFile(path, "token file")
			if err == nil || got != "" {
				t.Fatalf("readSecretFile = %q, %v; want an error", got, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "token file "+path) {
				t.Errorf("error %q: want it to name the file and say %q", msg, tt.want)
			}
			if strings.Contains(msg, "s.one") || strings.Contains(msg, "ssss") {
				t.Errorf("error %q contains the file's content", msg)
			}
		})
	}
}

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
