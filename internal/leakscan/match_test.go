package leakscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type want struct {
	key          string
	line, column int
}

func scanString(t *testing.T, s string) []Finding {
	t.Helper()
	found, n, err := New(Config{}).Reader(strings.NewReader(s), "in")
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(s)) {
		t.Errorf("read %d bytes, want %d", n, len(s))
	}
	return found
}

func checkFound(t *testing.T, got []Finding, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("%d findings, want %d: %v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.rawKey != w.key || g.Line != w.line || g.Column != w.column {
			t.Errorf("finding %d: %s:%d:%d (key matches: %v), want line %d column %d", i, g.Path, g.Line, g.Column,
				g.rawKey == w.key, w.line, w.column)
		}
		if id := w.key[len(w.key)-50 : len(w.key)-38]; g.KeyID != id {
			t.Errorf("finding %d: key id %s, want %s", i, g.KeyID, id)
		}
	}
}

// TestFindsKeys: keys with a valid checksum are found, in every context
// they are pasted into, with their line and column.
func TestFindsKeys(t *testing.T) {
	kg, sk, long, one := genKey(t, "kg"), genKey(t, "sk"), genKey(t, "abcdefghij"), genKey(t, "a")
	for _, tc := range []struct {
		name string
		in   string
		want []want
	}{
		{"bare", kg, []want{{kg, 1, 1}}},
		{"line end", "x\n" + kg + "\n", []want{{kg, 2, 1}}},
		{"crlf", "a\r\n" + kg + "\r\nb", []want{{kg, 2, 1}}},
		{"json", `{"api_key": "` + kg + `"}`, []want{{kg, 1, 14}}},
		{"yaml", "keygate:\n  key: " + kg + "\n", []want{{kg, 2, 8}}},
		{"env", "KEYGATE_API_KEY=" + kg, []want{{kg, 1, 17}}},
		{"env underscore before", "MY_" + kg, []want{{kg, 1, 4}}},
		{"url", "https://api.example.com/v1?api_key=" + kg + "&page=2", []want{{kg, 1, 36}}},
		{"bearer", "Authorization: Bearer " + kg, []want{{kg, 1, 23}}},
		{"letters before the prefix", "Bearer" + kg, []want{{kg, 1, 7}}},
		{"digit before the prefix", "9" + kg, []want{{kg, 1, 2}}},
		{"underscore after", kg + "_old", []want{{kg, 1, 1}}},
		{"other prefixes", sk + " " + long + " " + one, []want{{sk, 1, 1}, {long, 1, len(sk) + 2}, {one, 1, len(sk) + len(long) + 3}}},
		{"two on a line", kg + "," + kg, []want{{kg, 1, 1}, {kg, 1, len(kg) + 2}}},
		{"quoted in go", `const k = "` + kg + `"`, []want{{kg, 1, 12}}},
		{"tab", "\t" + kg, []want{{kg, 1, 2}}},
		{"non-utf8 around", "\xff\xfe" + kg + "\xff", []want{{kg, 1, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkFound(t, scanString(t, tc.in), tc.want) })
	}
}

// TestIgnoresNearMisses: what is shaped like a key but is not one is never
// a finding: wrong checksum, length, alphabet or prefix.
func TestIgnoresNearMisses(t *testing.T) {
	kg := genKey(t, "kg")
	body := kg[3:]
	for _, tc := range []struct{ name, in string }{
		{"checksum", breakChecksum(kg)},
		{"one more", kg + "A"},
		{"one less", kg[:len(kg)-1]},
		{"dash in body", kg[:20] + "-" + kg[21:]},
		{"non-ascii in body", kg[:20] + "é" + kg[22:]},
		{"upper-case prefix", "KG_" + body},
		{"prefix too long", makeKey("abcdefghijk", body[:44])},
		{"no prefix", "_" + body},
		{"digit-only prefix", makeKey("9", body[:44])},
		{"placeholder", "kg_" + strings.Repeat("x", 50)},
		{"body of another prefix", "sk_" + body},
		{"empty", ""},
		{"underscores", strings.Repeat("_", 500)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scanString(t, tc.in); len(got) != 0 {
				t.Errorf("found %d keys in a near miss", len(got))
			}
		})
	}
}

// TestLongLines: a line longer than the read buffer is scanned in pieces;
// a key at any offset across a piece boundary is found exactly once, at
// its column.
func TestLongLines(t *testing.T) {
	kg := genKey(t, "kg")
	for _, at := range []int{0, 1, readBufSize - len(kg) - 1, readBufSize - len(kg), readBufSize - 40, readBufSize - 3,
		readBufSize - 1, readBufSize, readBufSize + 1, 2*readBufSize - overlap, 2*readBufSize - 30, 3*readBufSize + 7} {
		for _, end := range []string{"", "\n", " tail\nnext " + kg + "\n"} {
			t.Run(fmt.Sprintf("at %d end %d", at, len(end)), func(t *testing.T) {
				in := strings.Repeat("a", at) + " " + kg + strings.Repeat(" b", readBufSize) + end
				wants := []want{{kg, 1, at + 2}}
				if strings.Contains(end, "next") {
					wants = append(wants, want{kg, 2, 6})
				}
				checkFound(t, scanString(t, in), wants)
			})
		}
	}
	// Keys everywhere in a 5 MB line of base62-free filler with
	// underscores (every piece boundary lands somewhere in a key).
	var b strings.Builder
	var wants []want
	for b.Len() < 5<<20 {
		b.WriteString("_x_")
		wants = append(wants, want{kg, 1, b.Len() + 1})
		b.WriteString(kg)
	}
	checkFound(t, scanString(t, b.String()), wants)
}

// TestMask: the prefix and four characters at each end of the body.
func TestMask(t *testing.T) {
	kg := genKey(t, "kg")
	if got, want := Mask(kg), "kg_"+kg[3:7]+"…"+kg[len(kg)-4:]; got != want {
		t.Errorf("Mask = %q, want %q", redact(got), want)
	}
	if got := Mask("short"); got != "<not a key>" {
		t.Errorf("Mask(short) = %q", got)
	}
	if keyShape.MatchString(Mask(kg)) {
		t.Error("the masked form is shaped like a key")
	}
}

// TestFindingNeverPrintsKey: fmt, slog and JSON show a finding without
// its raw key.
func TestFindingNeverPrintsKey(t *testing.T) {
	kg := genKey(t, "kg")
	f := scanString(t, kg)[0]
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("found", "finding", f)
	j, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s", f, f, f, f) + logs.String() + string(j)
	noRawKeys(t, "printed finding", out, kg)
	if !strings.Contains(out, f.KeyID) || !strings.Contains(out, f.Masked) {
		t.Errorf("printed finding lacks its id or masked form: %s", redact(out))
	}
}
