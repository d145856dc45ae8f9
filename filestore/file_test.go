package filestore

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
	"sigs.k8s.io/yaml"
)

func TestParseValid(t *testing.T) {
	asJSON, err := yaml.YAMLToJSON([]byte(validFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
	}{
		{"yaml", validFile},
		{"json", string(asJSON)},
		{"json with tabs", strings.ReplaceAll(prettyJSON(t, asJSON), "  ", "\t")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseStrict([]byte(tt.data))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(st.records) != 2 {
				t.Fatalf("got %d records, want 2", len(st.records))
			}
			a := st.records[idA]
			if a.Tenant != "acme" || len(a.Scopes) != 2 || a.Headers["x-plan"] != "gold" {
				t.Errorf("record %s = %+v", idA, a)
			}
			if got := a.ExpiresAtTime().Year(); got != 2030 {
				t.Errorf("expires_at year = %d, want 2030 (compiled by Validate)", got)
			}
			if st.version(idA) != 1 || st.version(idB) != 4 {
				t.Errorf("versions = %d, %d; want 1, 4", st.version(idA), st.version(idB))
			}
			if st.peppers.Current != 1 || len(st.peppers.Versions[1]) != 32 {
				t.Errorf("peppers = current %d, %d bytes", st.peppers.Current, len(st.peppers.Versions[1]))
			}
		})
	}
}

func TestParseOptionalSections(t *testing.T) {
	tests := []struct {
		name string
		data string
		keys int
	}{
		{"no keys", "keys: {}\n", 0},
		{"no pepper, no versions", "keys:\n  " + idA + ": {hash: " + hashA + ", tenant: t, status: active}\n", 1},
		{"orphan version is ignored", "keys: {}\nversions: {" + idA + ": 3}\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseStrict([]byte(tt.data))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(st.records) != tt.keys {
				t.Errorf("got %d records, want %d", len(st.records), tt.keys)
			}
		})
	}
}

// rec renders one key entry in flow style.
func rec(id, body string) string { return "  " + id + ": {" + body + "}\n" }

const good = "hash: " + hashA + ", tenant: t, status: active"

// docErrorFiles fail at the document level: nothing in them is loaded.
var docErrorFiles = []struct {
	name string
	data string
	want []string // each must appear in the error
}{
	{"empty file", "", []string{`want a mapping with "keys:"`}},
	{"only comments", "# nothing\n", []string{`want a mapping`}},
	{"top-level list", "- a\n", []string{`want a mapping`}},
	{"bad yaml", "keys: [\n", []string{"parse: yaml: line 1"}},
	{"bad yaml indentation", "keys:\n  a: 1\n b: 2\n", []string{"parse: yaml:"}},
	{"missing keys", "versions: {}\n", []string{`keys: required`}},
	{"keys is a list", "keys: [a]\n", []string{"keys: want a mapping"}},
	{"keys is null", "keys:\n", []string{`keys: required`}},
	{"duplicate id", "keys:\n" + rec(idA, good) + rec(idA, good), []string{`key "` + idA + `" already set`}},
	{"duplicate field in a record", "keys:\n" + rec(idA, good+", tenant: u"), []string{`key "tenant" already set`}},
	{"short pepper", "pepper: {current: 1, versions: {1: c2hvcnQ=}}\nkeys: {}\n",
		[]string{`pepper field "versions.1": 5 bytes, need at least 32`}},
	{"pepper not base64", "pepper: {current: 1, versions: {1: '!!'}}\nkeys: {}\n", []string{`pepper field "versions.1": not standard base64`}},
	{"pepper version 0", "pepper: {current: 1, versions: {0: " + pepper1 + ", 1: " + pepper1 + "}}\nkeys: {}\n",
		[]string{`pepper field "versions": version "0" is not an integer >= 1`}},
	{"current pepper missing", "pepper: {current: 2, versions: {1: " + pepper1 + "}}\nkeys: {}\n",
		[]string{`pepper field "current": version 2 is not in versions`}},
	{"unknown pepper field", "pepper: {curent: 1}\nkeys: {}\n", []string{`pepper field "curent": unknown field`}},
	{"pepper wrong type", "pepper: {current: one}\nkeys: {}\n", []string{`pepper field "current": got JSON string, want an integer`}},
	{"every document problem at once", "extra: 1\npepper: {current: 2}\nkeys: [a]\n",
		[]string{`unknown top-level field "extra"`, `pepper field "current"`, "keys: want a mapping"}},
}

func TestParseDocumentErrors(t *testing.T) {
	for _, tt := range docErrorFiles {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("parse succeeded (%d records), want an error", len(st.records))
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

// keyShapedID is a raw API key pasted where an id belongs.
const keyShapedID = "kg_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIj"

// problemFiles load, with problems: what is valid is served, each invalid
// record is an invalid entry, and the problems name every place.
var problemFiles = []struct {
	name    string
	data    string
	records []string // ids served
	invalid []string // ids denied as invalid records
	want    []string // each must appear in the problems
	notWant []string // none may appear in the problems
}{
	{"unknown top-level field", "keyz: {}\nkeys:\n" + rec(idA, good), []string{idA}, nil,
		[]string{`unknown top-level field "keyz"`}, nil},
	{"bad id", "keys:\n" + rec("short", good) + rec(idA, good), []string{idA}, nil,
		[]string{"keys.short: not a key id"}, nil},
	{"key-shaped id is redacted", "keys:\n" + rec(keyShapedID, good), nil, nil,
		[]string{"keys.<redacted>: not a key id"}, []string{keyShapedID[3:]}},
	{"numeric id read as a float", "keys:\n" + rec("123456789e12", good), nil, nil,
		[]string{"keys.1.2345679e+20: not a key id", "quote ids made of digits"}, nil},
	{"octal-looking id read as a number", "keys:\n" + rec("000000000001", good), nil, nil,
		[]string{"keys.1: not a key id (YAML read it as a number"}, nil},
	{"wrong type names the field", "keys:\n" + rec(idA, good+", scopes: read"), nil, []string{idA},
		[]string{`keys.` + idA + `: record field "scopes": got JSON string, want an array of strings`}, nil},
	{"unknown record field", "keys:\n" + rec(idA, good+", colour: red"), nil, []string{idA},
		[]string{`keys.` + idA + `: record field "colour": unknown field`}, nil},
	{"every record problem, each with its id", "keys:\n" + rec(idA, "status: active"), nil, []string{idA},
		[]string{`keys.` + idA + `: record field "hash": required`, `keys.` + idA + `: record field "tenant": required`}, nil},
	{"two bad records, both named", "keys:\n" + rec(idA, "hash: "+hashA+", tenant: t, status: paused") + rec(idB, "hash: x, tenant: t, status: active"),
		nil, []string{idA, idB}, []string{`keys.` + idA + `: record field "status"`, `keys.` + idB + `: record field "hash"`}, []string{hashA[7:]}},
	{"empty record", "keys:\n  " + idA + ":\n", nil, []string{idA}, []string{`keys.` + idA + `: record field "hash": required`}, nil},
	{"hmac record without pepper", "keys:\n" + rec(idB, "hash: "+hashB+", tenant: t, status: active"), nil, []string{idB},
		[]string{`keys.` + idB + `: record field "hash": pepper version 1 is not in pepper.versions`}, []string{hashB[15:]}},
	{"version below 1", "keys:\n" + rec(idA, good) + "versions: {" + idA + ": 0}\n", []string{idA}, nil,
		[]string{"versions." + idA + ": 0, must be >= 1"}, nil},
	{"version not a number", "keys:\n" + rec(idA, good) + "versions: {" + idA + ": x}\n", []string{idA}, nil,
		[]string{"versions: want a mapping of key id to an integer"}, nil},
	{"all problems at once", "extra: 1\nkeys:\n" + rec("bad", good) + rec(idA, "tenant: t") + rec(idB, good),
		[]string{idB}, []string{idA},
		[]string{`unknown top-level field "extra"`, "keys.bad: not a key id", `keys.` + idA + `: record field "hash"`, `keys.` + idA + `: record field "status"`}, nil},
}

func TestParseProblems(t *testing.T) {
	for _, tt := range problemFiles {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parse([]byte(tt.data))
			if err != nil {
				t.Fatalf("parse: %v, want the file loaded with problems", err)
			}
			if got := slices.Sorted(maps.Keys(st.records)); !slices.Equal(got, tt.records) {
				t.Errorf("records %v, want %v", got, tt.records)
			}
			if got := slices.Sorted(maps.Keys(st.invalid)); !slices.Equal(got, tt.invalid) {
				t.Errorf("invalid entries %v, want %v", got, tt.invalid)
			}
			for id, err := range st.invalid {
				if !errors.Is(err, policy.ErrInvalidRecord) || !strings.HasPrefix(err.Error(), "key "+id+": invalid key record: record ") {
					t.Errorf("invalid entry %s: %v, want ErrInvalidRecord naming the id and field", id, err)
				}
			}
			problems := st.check()
			if problems == nil {
				t.Fatal("no problems reported")
			}
			if _, err := parseStrict([]byte(tt.data)); err == nil || err.Error() != problems.Error() {
				t.Errorf("parseStrict = %v, want the problems", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(problems.Error(), want) {
					t.Errorf("problems %q\ndo not contain %q", problems, want)
				}
			}
			for _, bad := range tt.notWant {
				if strings.Contains(problems.Error(), bad) {
					t.Errorf("problems %q\ncontain %q", problems, bad)
				}
			}
		})
	}
}

func TestParseRejectsHugeFile(t *testing.T) {
	_, err := parse(make([]byte, MaxFileSize+1))
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("got %v, want a size error", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	st, err := parse([]byte(validFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, asJSON := range []bool{false, true} {
		data, err := encode(st, asJSON)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseStrict(data)
		if err != nil {
			t.Fatalf("re-parse (json=%v): %v\n%s", asJSON, err, data)
		}
		for _, id := range []string{idA, idB} {
			if back.version(id) != st.version(id) {
				t.Errorf("json=%v: %s version %d, want %d", asJSON, id, back.version(id), st.version(id))
			}
			got, _ := json.Marshal(back.records[id])
			want, _ := json.Marshal(st.records[id])
			if string(got) != string(want) {
				t.Errorf("json=%v: %s\ngot  %s\nwant %s", asJSON, id, got, want)
			}
		}
		if string(back.peppers.Versions[1]) != string(st.peppers.Versions[1]) {
			t.Errorf("json=%v: pepper changed", asJSON)
		}
	}
}

func TestEncodeIsReadableYAML(t *testing.T) {
	st := &state{records: map[string]*policy.Record{}, versions: map[string]int{}}
	for _, id := range []string{idB, "000000000001", idA, "123456789e12"} {
		st.records[id] = &policy.Record{Hash: hashA, Tenant: "t", Status: "active", CreatedAt: "2026-01-02T15:04:05Z"}
	}
	data, err := encode(st, false)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "# keygate file store") {
		t.Errorf("missing header comment:\n%s", text)
	}
	for _, id := range []string{`"000000000001":`, `"123456789e12":`} { // number-like ids are quoted
		if !strings.Contains(text, "\n  "+id+"\n") {
			t.Errorf("id %s missing or not quoted in:\n%s", id, text)
		}
	}
	if a, b := strings.Index(text, idA), strings.Index(text, idB); a < 0 || b < a {
		t.Errorf("ids not sorted in:\n%s", text)
	}
	if _, err := parseStrict(data); err != nil {
		t.Errorf("written file does not load: %v", err)
	}
}

func prettyJSON(t *testing.T, data []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
