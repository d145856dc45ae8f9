package policy

import (
	"strings"
	"testing"
)

// TestRedact: anything key-shaped (an underscore and 40 or more base62
// characters, with any prefix) is replaced, from the shortest such string
// (41 bytes) up; shorter text and near misses pass unchanged.
func TestRedact(t *testing.T) {
	b40 := strings.Repeat("aZ09", 10)
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"_" + b40, "<redacted>"},
		{"_" + b40[:39], "_" + b40[:39]},
		{"x" + b40, "x" + b40},
		{fixedKey, "<redacted>"},
		{"hash " + fixedKey + " is not hex", "hash <redacted> is not hex"},
		{`"` + fixedKey + `","` + fixedKey + `"`, `"<redacted>","<redacted>"`},
		{"_" + b40[:20] + "-" + b40[:20], "_" + b40[:20] + "-" + b40[:20]},
		{"record field \"scopes[0]\": want 1-128 of [A-Za-z0-9:._/*-]", "record field \"scopes[0]\": want 1-128 of [A-Za-z0-9:._/*-]"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
