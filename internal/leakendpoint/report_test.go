package leakendpoint

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseReport(t *testing.T) {
	good := []struct {
		in   string
		want []Match
	}{
		{`[]`, nil},
		{` [ {"token":"t","type":"kg","url":"u","source":"content"} ] `, []Match{{"t", "kg", "u", "content"}}},
		{`[{"token":"t"},{"token":"u","extra":{"a":[1]}}]`, []Match{{Token: "t"}, {Token: "u"}}},
		{`[{"source":"commit","token":"some_token","type":"some_type","url":"https://example.com/base-repo-url/"}]`,
			[]Match{{"some_token", "some_type", "https://example.com/base-repo-url/", "commit"}}}, // GitHub's sample
	}
	for _, c := range good {
		got, err := ParseReport([]byte(c.in), 3)
		if err != nil || len(got) != len(c.want) {
			t.Errorf("%s: %v %v", c.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: [%d] = %#v", c.in, i, got[i])
			}
		}
	}
	bad := []struct {
		in   string
		want error
	}{
		{``, ErrBadReport}, {`null`, ErrBadReport}, {`{}`, ErrBadReport}, {`"x"`, ErrBadReport}, {`[`, ErrBadReport},
		{`[{"token":"t"}`, ErrBadReport}, {`[{"token":"t"}]]`, ErrBadReport}, {`[{"token":"t"}] x`, ErrBadReport},
		{`[{"token":""}]`, ErrBadReport}, {`[{"token":null}]`, ErrBadReport}, {`[{}]`, ErrBadReport}, {`[1]`, ErrBadReport},
		{`[{"token":"t","url":5}]`, ErrBadReport}, {`[{"token":"t"},]`, ErrBadReport}, {`[{"token":["t"]}]`, ErrBadReport},
		{`[{"token":"a"},{"token":"b"},{"token":"c"},{"token":"d"}]`, ErrTooManyTokens},
	}
	for _, c := range bad {
		if _, err := ParseReport([]byte(c.in), 3); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.in, err, c.want)
		}
	}
}

// FuzzParseReport: on any body the parser never panics, its errors never
// quote the body, and every report it accepts holds non-empty tokens,
// at most the limit.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`[]`, `[{"token":"kg_4VvXJ3tq9aBzAb3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3xyQQQQQQ","type":"keygate_api_key","url":"https://github.com/o/r","source":"content"}]`,
		`[{"token":"a"},{"token":"b"},{"token":"c"}]`, `[{"token":"t"}] `, `[{"token":1}]`, `{"token":"t"}`, `[{"token":"\u0000\ud800"}]`,
		`[` + strings.Repeat(`[`, 100), `[{"token":"t","token":"u"}]`, "[\xff]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ms, err := ParseReport(in, 3)
		if err != nil {
			if !errors.Is(err, ErrBadReport) && !errors.Is(err, ErrTooManyTokens) {
				t.Fatalf("error of no kind: %v", err)
			}
			if len(in) >= 8 && strings.Contains(err.Error(), string(in)) {
				t.Fatalf("the error quotes the body: %v", err)
			}
			return
		}
		if len(ms) > 3 {
			t.Fatalf("%d tokens accepted, limit 3", len(ms))
		}
		for _, m := range ms {
			if m.Token == "" {
				t.Fatal("empty token accepted")
			}
			if len(m.Token) >= 20 && strings.Contains(m.String(), m.Token) && !strings.Contains(m.Type+m.URL+m.Source, m.Token) {
				t.Fatal("Match.String shows the token")
			}
		}
	})
}

// TestReplayGuard: entries expire after the window, the memory is bounded
// (oldest forgotten first), and a forgotten entry is admitted again.
func TestReplayGuard(t *testing.T) {
	g := newReplayGuard(time.Minute, 3)
	t0 := time.Unix(1_700_000_000, 0)
	sum := func(b byte) [32]byte { return [32]byte{b} }
	if !g.admit(sum(1), t0) || g.admit(sum(1), t0.Add(59*time.Second)) {
		t.Fatal("within the window")
	}
	if !g.admit(sum(1), t0.Add(time.Minute)) {
		t.Error("after the window")
	}
	for b := byte(2); b < 10; b++ {
		g.admit(sum(b), t0.Add(time.Minute))
	}
	if n := g.len(); n > 3 || len(g.order) > 3 {
		t.Errorf("%d entries (%d in order), bound 3", n, len(g.order))
	}
	if g.admit(sum(9), t0.Add(time.Minute)) {
		t.Error("the newest entry was forgotten")
	}
	g.forget(sum(9))
	if !g.admit(sum(9), t0.Add(time.Minute)) {
		t.Error("a forgotten entry is refused")
	}
}
