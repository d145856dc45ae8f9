package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestErrorText: an *Error says what was asked (op, and the key id if
// any), Vault's HTTP status if one came, and the cause.
func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: OpList}, "vault: list"},
		{&Error{Op: OpJournal, Err: context.DeadlineExceeded}, "vault: journal: context deadline exceeded"},
		{&Error{Op: OpGet, KeyID: "AAAAAAAAAAAA", Status: 404}, "vault: get AAAAAAAAAAAA: HTTP 404"},
		{&Error{Op: OpLookup, KeyID: "AAAAAAAAAAAA", Status: 503, Err: errors.New("Vault is sealed")},
			"vault: lookup AAAAAAAAAAAA: HTTP 503: Vault is sealed"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestSummarize: Vault's error strings become one line of at most
// maxMessage bytes (then "..."), without the token.
func TestSummarize(t *testing.T) {
	const token = "hvs.SECRET"
	long := strings.Repeat("x", maxMessage)
	tests := []struct {
		name string
		msgs []string
		want string
	}{
		{"none", nil, "no error message"},
		{"empty", []string{""}, "no error message"},
		{"two", []string{"permission denied", "invalid token"}, "permission denied; invalid token"},
		{"multi-line", []string{"2 errors occurred:\n\t* a\n\t* b\n\n"}, "2 errors occurred: * a * b"},
		{"token", []string{"bad token " + token}, "bad token [token]"},
		{"exactly maxMessage bytes", []string{long}, long},
		{"one byte more", []string{long + "y"}, long + "..."},
		{"a character across the cut", []string{long[1:] + "é"}, long[1:] + "..."},
	}
	for _, tt := range tests {
		if got := summarize(tt.msgs, token); got != tt.want {
			t.Errorf("%s: summarize = %q, want %q", tt.name, got, tt.want)
		}
	}
}
