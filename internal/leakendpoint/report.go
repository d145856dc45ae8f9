package leakendpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Match is one token GitHub found: an element of a report.
type Match struct {
	// Token is the raw matched string: never log or echo it.
	Token string `json:"token"`
	// Type is the secret type's name, as registered with GitHub.
	Type string `json:"type"`
	// URL is where GitHub found it (may be empty).
	URL string `json:"url"`
	// Source is what kind of place: "content", "commit", "issue_comment",
	// "npm", ...
	Source string `json:"source"`
}

// String and GoString keep the token out of %v and %#v.
func (m Match) String() string {
	return fmt.Sprintf("{type %q url %q source %q}", m.Type, m.URL, m.Source)
}
func (m Match) GoString() string { return m.String() }

// Feedback is GitHub's token-status answer for one token: its SHA-256
// (hex), its type and whether it is a real credential.
type Feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     Label  `json:"label"`
}

// Label is GitHub's verdict vocabulary.
type Label string

const (
	// TruePositive: the token is a key the store holds (its hash
	// verifies), active, revoked or expired.
	TruePositive Label = "true_positive"
	// FalsePositive: not a keygate key (shape, checksum), or no record of
	// the store verifies it.
	FalsePositive Label = "false_positive"
)

// Errors of ParseReport.
var (
	ErrBadReport      = errors.New("malformed report")
	ErrTooManyTokens  = errors.New("too many tokens in the report")
	errTrailingTokens = errors.New("data after the JSON array")
)

// ParseReport decodes a report: a JSON array of objects with a string
// "token" (required, non-empty), and optional string "type", "url" and
// "source"; other fields are ignored. More than maxTokens elements is
// ErrTooManyTokens; anything else wrong is ErrBadReport. Errors never hold
// a token.
func ParseReport(body []byte, maxTokens int) ([]Match, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, fmt.Errorf("%w: want a JSON array", ErrBadReport)
	}
	var out []Match
	for dec.More() {
		if len(out) == maxTokens {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyTokens, maxTokens)
		}
		var m struct {
			Token  *string `json:"token"`
			Type   string  `json:"type"`
			URL    string  `json:"url"`
			Source string  `json:"source"`
		}
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%w: element %d: %s", ErrBadReport, len(out), jsonProblem(err))
		}
		if m.Token == nil || *m.Token == "" {
			return nil, fmt.Errorf("%w: element %d: no token", ErrBadReport, len(out))
		}
		out = append(out, Match{Token: *m.Token, Type: m.Type, URL: m.URL, Source: m.Source})
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, fmt.Errorf("%w: %s", ErrBadReport, jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %w", ErrBadReport, errTrailingTokens)
	}
	return out, nil
}

// jsonProblem describes a decoding error without quoting the input (which
// may hold a token): its kind and offset only.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: want a %s", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of JSON"
	}
	return "invalid JSON"
}
