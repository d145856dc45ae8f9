package leakscan

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
)

// Finding is one keygate key found in a file, a stream or a repository's
// history. It holds the raw key, for Verify and Revoke, in an unexported
// field: String, GoString, LogValue and JSON never show it.
type Finding struct {
	// Path is the file ("-" for stdin; for history, the path in the
	// repository, slash-separated).
	Path string `json:"path"`
	// Commit is the commit that added the line (history only).
	Commit string `json:"commit,omitempty"`
	// Line and Column (1-based, in bytes) are where the key starts.
	Line   int `json:"line"`
	Column int `json:"column"`
	// KeyID is the key's public id; Prefix its prefix, without "_".
	KeyID  string `json:"key_id"`
	Prefix string `json:"prefix"`
	// Masked is the key as reports show it (see Mask).
	Masked string `json:"masked"`
	// Status is the key's status in the store (Verify); Unchecked before.
	Status Status `json:"status"`
	// StatusErr is why Status is Error.
	StatusErr error `json:"-"`
	// Revoked is set when Revoke revoked the key in this run; RevokeErr
	// when it tried and failed. Warnings are problems after a revocation
	// was written (the change journal could not be).
	Revoked   bool    `json:"revoked,omitempty"`
	RevokeErr error   `json:"-"`
	Warnings  []error `json:"-"`

	rawKey string
}

func newFinding(path, commit string, h hit) Finding {
	return Finding{Path: path, Commit: commit, Line: h.line, Column: h.column, KeyID: h.keyID, Prefix: h.prefix,
		Masked: Mask(h.rawKey), Status: Unchecked, rawKey: h.rawKey}
}

// Location is "path:line", with "@commit" (abbreviated) for history.
func (f Finding) Location() string {
	loc := fmt.Sprintf("%s:%d", f.Path, f.Line)
	if f.Commit != "" {
		loc = f.Commit[:min(12, len(f.Commit))] + ":" + loc
	}
	return loc
}

func (f Finding) String() string {
	return fmt.Sprintf("%s key %s (%s) %s", f.Location(), f.KeyID, f.Masked, f.Status)
}

// GoString keeps %#v from printing the raw key.
func (f Finding) GoString() string { return f.String() }

// LogValue keeps slog from printing the raw key.
func (f Finding) LogValue() slog.Value {
	return slog.GroupValue(slog.String("location", f.Location()), slog.String("key_id", f.KeyID),
		slog.String("masked", f.Masked), slog.String("status", string(f.Status)))
}

// Live reports whether the finding may be a working key: active in the
// store, or not checked against one.
func (f Finding) Live() bool { return f.Status == Active || f.Status == Unchecked }

// sortFindings orders findings by path, commit, line and column.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Commit, b.Commit),
			cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}
