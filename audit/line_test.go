package audit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/extauthz"
)

var update = flag.Bool("update", false, "rewrite testdata/lines.golden")

// lineAt is the fixed decision time of the golden lines: not UTC, so that
// the conversion is seen.
var lineAt = time.Date(2026, 12, 6, 16, 4, 5, 123456789, time.FixedZone("CET", 3600))

// TestAppendLineGolden: the exact bytes of the lines of a mixed burst (every
// reason kind, escaping, redaction, dropped and kept query strings, latency
// rounding) are the golden file's. Run with -update to accept a change.
func TestAppendLineGolden(t *testing.T) {
	var got []byte
	for _, keep := range []bool{false, true} {
		l := &Logger{cfg: Config{KeepQuery: keep}}
		for i, d := range mixed(8) {
			d.Latency = time.Duration(i) * 999 * time.Nanosecond * 1001
			got = l.appendLine(got, line{at: lineAt.Add(time.Duration(i) * time.Millisecond), d: d})
		}
		got = l.appendLine(got, line{at: lineAt, d: extauthz.Decision{Source: extauthz.Source(200)}})
	}
	path := filepath.Join("testdata", "lines.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("lines differ from %s (-update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// BenchmarkAppendLine: formatting one allow line, as the writer does for
// every sampled decision.
func BenchmarkAppendLine(b *testing.B) {
	l := &Logger{cfg: DefaultConfig()}
	ln := line{at: lineAt, d: mixed(1)[0]}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = l.appendLine(buf[:0], ln)
	}
}
