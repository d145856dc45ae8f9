package leakscan

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchText is n bytes of code-like text, dense in underscores (each one
// a place a key could start), with a key every 1000 lines.
func benchText(b *testing.B, n int) []byte {
	b.Helper()
	words := []string{"func", "return", "err", "nil", "ctx", "key_id", "api_key", "snake_case_name", "self._value",
		"DEFAULT_TIMEOUT = 30", "user_id", "sha256:3f1a9c2b8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"}
	key := genKey(b, "kg")
	r := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for line := 0; buf.Len() < n; line++ {
		buf.WriteString(strings.Repeat("\t", r.IntN(4)))
		for range 3 + r.IntN(10) {
			buf.WriteString(words[r.IntN(len(words))])
			buf.WriteByte(' ')
		}
		if line%1000 == 0 {
			buf.WriteString(key)
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// BenchmarkReader: one stream, one core.
func BenchmarkReader(b *testing.B) {
	text := benchText(b, 8<<20)
	s := New(Config{})
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Reader(bytes.NewReader(text), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPaths: a tree of 200 files of 100 KB (in the page cache after
// the first pass), all cores.
func BenchmarkPaths(b *testing.B) {
	dir := b.TempDir()
	text := benchText(b, 100<<10)
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(dir, "f"+itoa(i)+".go"), text, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	s := New(Config{})
	b.SetBytes(int64(200 * len(text)))
	for b.Loop() {
		res, err := s.Paths(context.Background(), []string{dir}, nil)
		if err != nil || len(res.Findings) == 0 {
			b.Fatal(err, len(res.Findings))
		}
	}
}
