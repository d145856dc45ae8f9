package rules

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/filestore"
	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/policy"
)

// scanner names the scanners whose findings a fixture line expects.
type scanner int

const (
	gitleaks   scanner = 1 << iota // the real gitleaks with gitleaks.toml
	trufflehog                     // trufflehog.yaml's keyword, regex and entropy
	github                         // github-secret-scanning.md's pattern
	keygate                        // keygate scan (internal/leakscan)

	rulesAll = gitleaks | trufflehog | github // the shape rules: no checksum
	all      = rulesAll | keygate
)

// spot is one string in the fixture tree and which scanners must report
// it there.
type spot struct {
	what         string // for failure messages: never the string itself
	file         string // relative, slash-separated
	line, column int    // 1-based; column in bytes
	secret       string // the key as a scanner reports it
	by           scanner
}

// fixture is a tree of files with live, revoked and unknown keys from a
// real file store, checksum-broken keys and near misses, in the formats
// keys get pasted into.
type fixture struct {
	dir     string
	spots   []spot
	secrets []string // every key and near miss, for the no-raw-key checks
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := filestore.OpenOrCreate(ctx, filepath.Join(t.TempDir(), "keys.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := keyadmin.New(keyadmin.Config{}, store)
	if err != nil {
		t.Fatal(err)
	}
	issue := func() string {
		tenant := "acme"
		k, err := svc.Issue(ctx, keyadmin.Fields{Tenant: &tenant})
		if err != nil {
			t.Fatal(err)
		}
		return k.RawKey
	}
	active1, active2, revoked := issue(), issue(), issue()
	if _, err := svc.Revoke(ctx, revoked[3:15], "rotated"); err != nil {
		t.Fatal(err)
	}
	unknown := generate(t, "kg")
	other := generate(t, "sk")
	broken := active1[:len(active1)-1] + flip(active1[len(active1)-1])
	body := active1[3:]
	checksum5 := active1[:len(active1)-6] + "5" + active1[len(active1)-5:]
	placeholder := "kg_" + strings.Repeat("x", 44) + "0" + strings.Repeat("x", 5)

	f := &fixture{dir: t.TempDir(), secrets: []string{active1, active2, revoked, unknown, other, broken, checksum5, placeholder}}
	f.add(t, "config.json", `{"api_key": "`, active1, `"}`, "a live key in JSON", all)
	f.add(t, "deploy/values.yaml", "keygate:\n  key: ", revoked, "", "a revoked key in YAML", all)
	f.add(t, ".env", "KEYGATE_API_KEY=", active2, "", "a live key in .env", all)
	f.add(t, "docs/curl.md", "curl 'https://api.example.com/v1/orders?api_key=", active1, "&page=2'", "a live key in a URL", all)
	f.add(t, "client.go", "package client\n\nconst apiKey = \"", unknown, "\"", "a never-issued key in Go", all)
	f.add(t, "misses/checksum.txt", "token: ", broken, "", "a wrong checksum", rulesAll)
	f.add(t, "misses/long.txt", "token: ", active1+"x", "", "one character too many", 0)
	f.add(t, "misses/short.txt", "token: ", active1[:len(active1)-1], "", "one character too few", 0)
	f.add(t, "misses/alphabet.txt", "token: ", active1[:20]+"-"+active1[21:], "", "a dash in the body", 0)
	f.add(t, "misses/upper.txt", "token: ", "KG_"+body, "", "an upper-case prefix", 0)
	f.add(t, "misses/checksum5.txt", "token: ", checksum5, "", "a checksum starting with 5", 0)
	f.add(t, "misses/placeholder.txt", "token: ", placeholder, "", "a low-entropy placeholder", github)
	// Where keygate scan (which checks the checksum) finds more than the
	// shape rules, which must not match inside words.
	f.add(t, "edge/joined.env", "MY_", active2, "", "a key joined to a word by _", keygate)
	f.add(t, "edge/glued.txt", "p", active2, "", "a key glued to letters", keygate)
	f.add(t, "edge/other-prefix.txt", "token: ", other, "", "a key with another prefix", keygate)
	// gitleaks decodes base64 (a Kubernetes Secret); the others do not.
	f.addAs(t, "edge/secret.yaml", "kind: Secret\ndata:\n  api-key: ", base64.StdEncoding.EncodeToString([]byte(active1)), "\n",
		"a live key in base64", gitleaks, active1)
	return f
}

// add writes before+s+after as file and records s's spot.
func (f *fixture) add(t *testing.T, file, before, s, after, what string, by scanner) {
	t.Helper()
	f.addAs(t, file, before, s, after, what, by, s)
}

func (f *fixture) addAs(t *testing.T, file, before, s, after, what string, by scanner, secret string) {
	t.Helper()
	path := filepath.Join(f.dir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(before+s+after+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	line := strings.Count(before, "\n") + 1
	column := len(before) - strings.LastIndex(before, "\n")
	f.spots = append(f.spots, spot{what: what, file: file, line: line, column: column, secret: secret, by: by})
}

// want is the spots scanner must report, by location.
func (f *fixture) want(s scanner) map[string]spot {
	out := map[string]spot{}
	for _, sp := range f.spots {
		if sp.by&s != 0 {
			out[loc(sp.file, sp.line, sp.column)] = sp
		}
	}
	return out
}

func loc(file string, line, column int) string { return fmt.Sprintf("%s:%d:%d", file, line, column) }

// compare checks that got (location → reported secret) is exactly want.
func compare(t *testing.T, name string, want map[string]spot, got map[string]string) {
	t.Helper()
	for l, sp := range want {
		secret, ok := got[l]
		switch {
		case !ok:
			t.Errorf("%s missed %s (%s)", name, sp.what, l)
		case secret != sp.secret:
			t.Errorf("%s reported a different string for %s (%s)", name, sp.what, l)
		}
	}
	for l := range got {
		if _, ok := want[l]; !ok {
			t.Errorf("%s reported %s, which it should not", name, l)
		}
	}
}

// noSecrets fails if out holds any fixture string.
func (f *fixture) noSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range f.secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s contains a fixture key", what)
		}
	}
}

var keyShape = regexp.MustCompile(`[a-z][a-z0-9]{0,9}_[0-9A-Za-z]{50}`)

func redact(s string) string { return keyShape.ReplaceAllString(s, "<key>") }

func generate(t *testing.T, prefix string) string {
	t.Helper()
	format, err := policy.NewFormat(prefix)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// checksummed appends a valid checksum to "prefix_" + 44 characters.
func checksummed(signed string) string {
	sum := uint64(crc32.ChecksumIEEE([]byte(signed)))
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var enc [6]byte
	for i := len(enc) - 1; i >= 0; i-- {
		enc[i] = digits[sum%62]
		sum /= 62
	}
	return signed + string(enc[:])
}

// entropy is the Shannon entropy of s in bits per character, as gitleaks
// and TruffleHog compute it.
func entropy(s string) float64 {
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	var h float64
	for _, n := range counts {
		p := float64(n) / float64(len(s))
		h -= p * math.Log2(p)
	}
	return h
}
