package policy

import (
	"errors"
	"regexp"
)

// keyShaped matches anything that could be an API key of any prefix: an
// underscore followed by a long base62 run. It over-matches on purpose.
var keyShaped = regexp.MustCompile(`[0-9A-Za-z]*_[0-9A-Za-z]{40,}`)

// Redact replaces everything key-shaped in s with "<redacted>". Error
// messages that quote user input (field names, values) pass through it, so
// a key pasted into the wrong place is never echoed into logs or output.
func Redact(s string) string {
	if len(s) < 41 {
		return s
	}
	return keyShaped.ReplaceAllLiteralString(s, "<redacted>")
}

// redactErr returns err with a redacted message, or err itself when there
// was nothing to redact (so errors.Is keeps working in the common case).
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	if msg := err.Error(); Redact(msg) != msg {
		return errors.New(Redact(msg))
	}
	return err
}
