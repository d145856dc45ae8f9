package filestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/keygate/keygate/policy"
	"sigs.k8s.io/yaml"
)

// MaxFileSize bounds the key file; larger files are rejected unparsed.
const MaxFileSize = 64 << 20

// header starts every file keygate writes.
const header = "# keygate file store. Written by keygate: comments and field order are not kept.\n"

// state is the decoded, validated content of a key file. Loaded states are
// never modified: writers change a clone.
type state struct {
	records map[string]*policy.Record
	// invalid holds, for each valid key id whose record does not load, the
	// error Lookup and Get return for it: it wraps policy.ErrInvalidRecord
	// and names the id and the fields, so that key is denied.
	invalid map[string]error
	// problems lists every problem below the document level, each naming
	// its place: invalid records, bad ids, bad versions, unknown top-level
	// fields. A file with problems is served, but never rewritten.
	problems []error
	// versions holds each record's version (an id without an entry is at
	// version 1), and the last version of each deleted key, which keeps
	// its id from being reused.
	versions map[string]int
	peppers  policy.Peppers
	// sums hold, for each valid key id in the keys section (valid record
	// or not), the hash of its entry as decoded, and pepperSum that of the
	// pepper section: what diff compares. Only parsed states have them.
	sums      map[string][sha256.Size]byte
	pepperSum [sha256.Size]byte
}

// check returns the state's problems joined, or nil if it has none.
func (st *state) check() error { return errors.Join(st.problems...) }

func (st *state) version(id string) int {
	if v, ok := st.versions[id]; ok {
		return v
	}
	return 1
}

// clone copies what a write changes; only a state without problems is
// written, so invalid and problems stay behind.
func (st *state) clone() *state {
	return &state{records: maps.Clone(st.records), versions: maps.Clone(st.versions), peppers: st.peppers}
}

// fileDoc is what keygate writes.
type fileDoc struct {
	Pepper   *policy.PepperDoc         `json:"pepper,omitempty"`
	Keys     map[string]*policy.Record `json:"keys"`
	Versions map[string]int            `json:"versions,omitempty"`
}

// parse decodes and validates a whole key file, reporting every problem.
// It fails only at the document level (size, YAML syntax, top level not a
// mapping, keys missing or not a mapping, bad pepper section), where there
// is no telling which records were meant. Anything below that (an invalid
// record, a bad id or version, an unknown top-level field) is recorded in
// the state's problems, and the rest loads.
func parse(data []byte) (*state, error) {
	top, err := parseTop(data)
	if err != nil {
		return nil, err
	}
	st := &state{}
	for _, name := range slices.Sorted(maps.Keys(top)) {
		if name != "keys" && name != "pepper" && name != "versions" {
			st.problems = append(st.problems, fmt.Errorf("unknown top-level field %q (want keys, pepper, versions)", name))
		}
	}
	var docErrs, perr []error
	st.peppers, perr = parsePeppers(top["pepper"])
	docErrs = append(docErrs, perr...)
	entries, err := keyEntries(top["keys"])
	if err != nil {
		docErrs = append(docErrs, err)
	}
	if len(docErrs) > 0 {
		return nil, errors.Join(append(docErrs, st.problems...)...)
	}
	st.records, st.invalid, perr = parseKeys(entries, st.peppers)
	st.sums, st.pepperSum = entrySums(entries), sha256.Sum256(top["pepper"])
	st.problems = append(st.problems, perr...)
	st.versions, perr = parseVersions(top["versions"])
	st.problems = append(st.problems, perr...)
	return st, nil
}

// parseStrict is parse, failing on any problem too.
func parseStrict(data []byte) (*state, error) {
	st, err := parse(data)
	if err != nil {
		return nil, err
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	return st, nil
}

// parseTop decodes the document into its top-level fields.
func parseTop(data []byte) (map[string]json.RawMessage, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, limit %d", len(data), MaxFileSize)
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var top map[string]json.RawMessage
	if err := strictDecode(j, &top); err != nil || top == nil {
		return nil, errors.New(`file: want a mapping with "keys:" at the top level`)
	}
	return top, nil
}

func parsePeppers(raw json.RawMessage) (policy.Peppers, []error) {
	if isAbsent(raw) {
		return policy.Peppers{}, nil
	}
	p, err := policy.ParsePeppers(raw)
	if err != nil {
		return p, []error{err}
	}
	return p, nil
}

// keyEntries splits the keys section into raw records by id.
func keyEntries(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var entries map[string]json.RawMessage
	if isAbsent(raw) {
		return nil, errors.New(`keys: required (write "keys: {}" for none)`)
	}
	if err := strictDecode(raw, &entries); err != nil {
		return nil, errors.New("keys: want a mapping of key id to record")
	}
	return entries, nil
}

// parseKeys decodes every record. A bad record becomes an invalid entry
// (and problems); a bad id only a problem, as no lookup can name it.
func parseKeys(entries map[string]json.RawMessage, peppers policy.Peppers) (map[string]*policy.Record, map[string]error, []error) {
	var problems []error
	records := make(map[string]*policy.Record, len(entries))
	invalid := map[string]error{}
	for _, id := range slices.Sorted(maps.Keys(entries)) {
		if !policy.ValidID(id) {
			problems = append(problems, badID(id))
			continue
		}
		rec, err := policy.ParseRecord(entries[id])
		if err == nil {
			err = checkPepper(rec, peppers)
		}
		if err != nil {
			problems = append(problems, prefixed("keys."+id, err)...)
			invalid[id] = fmt.Errorf("key %s: %w: %w", id, policy.ErrInvalidRecord, err)
			continue
		}
		records[id] = rec
	}
	return records, invalid, problems
}

// parseVersions decodes the versions section. An entry without a record
// is a deleted key's (by keygate or by hand): it keeps the id from being
// reused. Its problems never stop records being served: versions only
// guard writes.
func parseVersions(raw json.RawMessage) (map[string]int, []error) {
	var in map[string]int
	if isAbsent(raw) {
		return map[string]int{}, nil
	}
	if err := strictDecode(raw, &in); err != nil {
		return map[string]int{}, []error{errors.New("versions: want a mapping of key id to an integer")}
	}
	var errs []error
	out := make(map[string]int, len(in))
	for _, id := range slices.Sorted(maps.Keys(in)) {
		if !policy.ValidID(id) {
			continue // names no key; dropped on the next write
		}
		if in[id] < 1 {
			errs = append(errs, fmt.Errorf("versions.%s: %d, must be >= 1", id, in[id]))
			continue
		}
		out[id] = in[id]
	}
	return out, errs
}

// badID names a bad id, redacted: a raw key pasted as an id is never echoed.
func badID(id string) error {
	if _, err := strconv.ParseFloat(id, 64); err == nil {
		return fmt.Errorf("keys.%s: not a key id (YAML read it as a number: quote ids made of digits)", id)
	}
	return fmt.Errorf("keys.%s: not a key id (want %d base62 characters)", policy.Redact(id), policy.IDLen)
}

// checkPepper rejects an hmac-sha256 record whose pepper is not in the file:
// it could never verify, and its pepper may have been removed by mistake.
func checkPepper(rec *policy.Record, peppers policy.Peppers) error {
	d := rec.Digest()
	if d.Alg != policy.AlgHMACSHA256 {
		return nil
	}
	if _, ok := peppers.Versions[d.PepperVersion]; !ok {
		return fmt.Errorf("record field \"hash\": pepper version %d is not in pepper.versions", d.PepperVersion)
	}
	return nil
}

// prefixed puts prefix before each of err's joined errors, so that every
// line of the message names its place.
func prefixed(prefix string, err error) []error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("%s: %w", prefix, e))
		}
		return out
	}
	return append(out, fmt.Errorf("%s: %w", prefix, err))
}

func isAbsent(raw json.RawMessage) bool {
	return raw == nil || string(raw) == "null"
}

// strictDecode decodes one JSON value, rejecting unknown fields and trailing
// data, and names the field of a type error.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fmt.Errorf("field %q: got %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("unknown field %s", name)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// encode renders st as YAML (or indented JSON) with sorted keys.
func encode(st *state, asJSON bool) ([]byte, error) {
	doc := fileDoc{Keys: map[string]*policy.Record{}, Versions: map[string]int{}}
	maps.Copy(doc.Versions, st.versions) // deleted keys' too
	for id, rec := range st.records {
		doc.Keys[id] = rec
		doc.Versions[id] = st.version(id)
	}
	if st.peppers.Versions != nil {
		pd := st.peppers.Doc()
		doc.Pepper = &pd
	}
	if asJSON {
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		return append(out, '\n'), nil
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append([]byte(header), out...), nil
}
