package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// MaxImportKeys bounds the keys of one import file.
const MaxImportKeys = 100_000

// ImportEntry is one key of an import file, ready to be created.
type ImportEntry struct {
	ID     string  // ImportedID of the key's SHA-256
	Record *Record // validated; Imported set, hash sha256
}

// importSetByKeygate are record fields an import file may not set.
var importSetByKeygate = []string{"hash", "imported", "created_at", "updated_at", "rotated_to"}

// ParseImport reads an import file (JSON; the CLI converts YAML first):
//
//	{"keys": [{"key": "<raw key>", "tenant": "acme", ...},
//	          {"sha256": "<64 hex digits>", "tenant": "acme", ...}]}
//
// Each entry names the key (raw, hashed here) or its SHA-256, plus record
// fields (README "Key records"; status defaults to active). Keys with the
// keygate prefix of f are refused: they need no import. Every problem is
// reported at once, naming keys[i] and the field; a raw key is never echoed.
func ParseImport(data []byte, f Format, now time.Time) ([]ImportEntry, error) {
	var doc struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := decodeStrict("import file", data, &doc); err != nil {
		return nil, redactErr(err)
	}
	switch {
	case doc.Keys == nil:
		return nil, errors.New(`import file: "keys": required (a list of keys)`)
	case len(doc.Keys) > MaxImportKeys:
		return nil, fmt.Errorf("import file: %d keys, limit %d per file", len(doc.Keys), MaxImportKeys)
	}
	var errs []error
	out := make([]ImportEntry, 0, len(doc.Keys))
	first := map[string]int{} // id → index of its first entry
	for i, entry := range doc.Keys {
		e, err := parseImportEntry(entry, f, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys[%d]: %w", i, err))
			continue
		}
		if j, dup := first[e.ID]; dup {
			errs = append(errs, fmt.Errorf("keys[%d]: the same key as keys[%d]", i, j))
			continue
		}
		first[e.ID] = i
		out = append(out, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, redactImported(redactErr(err), doc.Keys)
	}
	return out, nil
}

// redactImported removes from err every raw key the file gives, wherever
// it was echoed (a key pasted into another field is quoted by that field's
// error); redactErr only knows keygate's own key shape.
func redactImported(err error, entries []map[string]json.RawMessage) error {
	msg := err.Error()
	for _, e := range entries {
		var rawKey string
		if json.Unmarshal(e["key"], &rawKey) == nil && len(rawKey) >= 4 {
			msg = strings.ReplaceAll(msg, rawKey, "[key]")
			if q := strings.Trim(strconv.Quote(rawKey), `"`); q != rawKey {
				msg = strings.ReplaceAll(msg, q, "[key]") // as %q quoted it
			}
		}
	}
	return errors.New(msg)
}

func parseImportEntry(entry map[string]json.RawMessage, f Format, now time.Time) (ImportEntry, error) {
	sum, err := importDigest(entry, f)
	if err != nil {
		return ImportEntry{}, err
	}
	for _, name := range importSetByKeygate {
		if _, ok := entry[name]; ok {
			return ImportEntry{}, fmt.Errorf("field %q: set by keygate, not by the import file", name)
		}
	}
	fields := maps.Clone(entry)
	delete(fields, "key")
	delete(fields, "sha256")
	body, err := json.Marshal(fields)
	if err != nil {
		return ImportEntry{}, err
	}
	var rec Record
	if err := decodeStrict("record", body, &rec); err != nil {
		return ImportEntry{}, err
	}
	if rec.Status == "" {
		rec.Status = StatusActive
	}
	rec.Hash = Digest{Alg: AlgSHA256, Sum: sum}.String()
	rec.Imported = true
	rec.CreatedAt = now.UTC().Format(time.RFC3339)
	rec.UpdatedAt = rec.CreatedAt
	if err := rec.Validate(); err != nil {
		return ImportEntry{}, err
	}
	return ImportEntry{ID: ImportedID(sum), Record: &rec}, nil
}

// importDigest returns the SHA-256 of the entry's key, from "key" (hashed
// here) or "sha256". Its errors never contain the key.
func importDigest(entry map[string]json.RawMessage, f Format) (sum [sha256.Size]byte, err error) {
	rawJSON, hasKey := entry["key"]
	hexJSON, hasSum := entry["sha256"]
	switch {
	case hasKey == hasSum:
		return sum, errors.New(`want exactly one of "key" (the raw key) and "sha256" (its SHA-256 in hex)`)
	case hasKey:
		var rawKey string
		if json.Unmarshal(rawJSON, &rawKey) != nil {
			return sum, errors.New(`field "key": want a string`)
		}
		switch {
		case f.HasPrefix(rawKey):
			return sum, fmt.Errorf(`field "key": starts with %s_, keygate's own prefix: keygate keys need no import`, f.Prefix())
		case !ImportableKey(rawKey):
			return sum, fmt.Errorf(`field "key": %w`, ErrImportedKey)
		}
		return sha256.Sum256([]byte(rawKey)), nil
	}
	var digits string
	if json.Unmarshal(hexJSON, &digits) != nil {
		return sum, errors.New(`field "sha256": want a string`)
	}
	digits = strings.TrimPrefix(strings.ToLower(digits), AlgSHA256+":")
	if len(digits) != hex.EncodedLen(sha256.Size) {
		return sum, fmt.Errorf(`field "sha256": want %d hex digits`, hex.EncodedLen(sha256.Size))
	}
	if _, err := hex.Decode(sum[:], []byte(digits)); err != nil {
		return sum, errors.New(`field "sha256": not hex`)
	}
	return sum, nil
}
