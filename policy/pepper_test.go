package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParsePeppersAllow(t *testing.T) {
	p32 := bytes.Repeat([]byte{0xa5}, MinPepperLen)
	p64 := bytes.Repeat([]byte("pepper-2"), 8)
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name string
		doc  string
		want Peppers
	}{
		{"one version of the minimum length", `{"current": 1, "versions": {"1": "` + b64(p32) + `"}}`,
			Peppers{Current: 1, Versions: map[int][]byte{1: p32}}},
		{"two versions, current the newer", `{"current": 2, "versions": {"1": "` + b64(p32) + `", "2": "` + b64(p64) + `"}}`,
			Peppers{Current: 2, Versions: map[int][]byte{1: p32, 2: p64}}},
		{"current the older", `{"current": 10, "versions": {"10": "` + b64(p32) + `", "11": "` + b64(p64) + `"}}`,
			Peppers{Current: 10, Versions: map[int][]byte{10: p32, 11: p64}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeppers([]byte(tt.doc))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePeppers = %+v, %v; want %+v", got, err, tt.want)
			}
			// The stored form round-trips.
			doc, err := json.Marshal(got.Doc())
			if err != nil {
				t.Fatal(err)
			}
			if back, err := ParsePeppers(doc); err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("ParsePeppers(Doc()) = %+v, %v; want %+v", back, err, got)
			}
		})
	}
}

// TestParsePeppersDeny: each case breaks one rule; the error names the
// field and never contains pepper bytes.
func TestParsePeppersDeny(t *testing.T) {
	short := bytes.Repeat([]byte("s"), MinPepperLen-1)
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("g"), MinPepperLen))
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"not JSON", `{"current": 1,`, []string{"pepper"}},
		{"unknown field", `{"current": 1, "versions": {"1": "` + good + `"}, "next": 2}`, []string{`"next"`, "unknown field"}},
		{"current as string", `{"current": "1", "versions": {"1": "` + good + `"}}`, []string{`"current"`, "string"}},
		{"no versions", `{"current": 1}`, []string{`"current": version 1 is not in versions`}},
		{"current not loaded", `{"current": 2, "versions": {"1": "` + good + `"}}`, []string{`"current": version 2 is not in versions`}},
		{"version 0", `{"current": 1, "versions": {"0": "` + good + `", "1": "` + good + `"}}`, []string{`version "0" is not an integer >= 1`}},
		{"negative version", `{"current": 1, "versions": {"-1": "` + good + `", "1": "` + good + `"}}`, []string{`version "-1"`}},
		{"leading zero", `{"current": 1, "versions": {"01": "` + good + `"}}`, []string{`version "01"`, `"current": version 1 is not in versions`}},
		{"plus sign", `{"current": 1, "versions": {"+1": "` + good + `", "1": "` + good + `"}}`, []string{`version "+1"`}},
		{"not a number", `{"current": 1, "versions": {"v1": "` + good + `", "1": "` + good + `"}}`, []string{`version "v1"`}},
		{"not base64", `{"current": 1, "versions": {"1": "not base64!"}}`, []string{`"versions.1": not standard base64`}},
		{"URL-safe base64", `{"current": 1, "versions": {"1": "` + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)) + `"}}`, []string{`"versions.1": not standard base64`}},
		{"one byte short", `{"current": 1, "versions": {"1": "` + base64.StdEncoding.EncodeToString(short) + `"}}`,
			[]string{`"versions.1": 31 bytes, need at least 32`}},
		{"every problem", `{"current": 3, "versions": {"0": "x", "1": "%%%", "2": "` + base64.StdEncoding.EncodeToString(short) + `"}}`,
			[]string{`version "0"`, `"versions.1"`, `"versions.2"`, `"current": version 3`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePeppers([]byte(tt.doc))
			wantErrContaining(t, err, tt.want...)
			if p.Current != 0 || p.Versions != nil {
				t.Errorf("ParsePeppers returned peppers with an error: %+v", p)
			}
			if err != nil && (strings.Contains(err.Error(), string(short)) || strings.Contains(err.Error(), good)) {
				t.Errorf("error contains pepper bytes: %v", err)
			}
		})
	}
}
