package leakscan

import (
	"hash/crc32"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/keygate/keygate/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// makeKey builds a key of prefix around a 44-character id+secret, with a
// correct checksum.
func makeKey(prefix, idSecret string) string {
	if len(idSecret) != policy.IDLen+policy.SecretLen {
		panic("makeKey: want 44 characters")
	}
	signed := prefix + "_" + idSecret
	sum := uint64(crc32.ChecksumIEEE([]byte(signed)))
	var enc [6]byte
	for i := len(enc) - 1; i >= 0; i-- {
		enc[i] = digits[sum%62]
		sum /= 62
	}
	return signed + string(enc[:])
}

// genKey is a fresh random key of prefix.
func genKey(t testing.TB, prefix string) string {
	t.Helper()
	f, err := policy.NewFormat(prefix)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// breakChecksum changes a key's last character, so only its checksum is
// wrong.
func breakChecksum(k string) string {
	last := k[len(k)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return k[:len(k)-1] + string(repl)
}

var keyShape = regexp.MustCompile(`[a-z][a-z0-9]{0,9}_[0-9A-Za-z]{50}`)

// redact hides anything key-shaped, so that no failure message prints a key.
func redact(s string) string { return keyShape.ReplaceAllString(s, "<key>") }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// noRawKeys fails if out holds any of keys.
func noRawKeys(t *testing.T, what, out string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(out, k) {
			t.Errorf("%s contains a raw key", what)
		}
	}
}
