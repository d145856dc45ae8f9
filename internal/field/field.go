// Package field reports configuration problems by the name of the setting
// at fault, so that the program that read the setting (a flag, an
// environment variable) can name it as the user typed it.
//
// A package's Config.Validate returns every problem at once as *Error
// values joined with errors.Join, each naming its field (keygate's packages
// name fields as their serve flags are named, without the dashes, e.g.
// "found-ttl"); cmd/keygate renames them with Rename to "--found-ttl" or
// "KEYGATE_FOUND_TTL".
package field

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem with one or more settings.
type Error struct {
	// Names are the settings at fault, e.g. "found-ttl", or for a list
	// entry "trusted-proxies[2]". More than one when only their
	// combination is wrong ("tls-cert" and "tls-key": give both).
	Names []string
	// Problem says what is wrong; it never repeats a secret.
	Problem string
}

func (e *Error) Error() string { return strings.Join(e.Names, " and ") + ": " + e.Problem }

// List collects problems.
type List struct{ errs []error }

// Add records a problem with the named settings.
func (l *List) Add(problem string, names ...string) {
	l.errs = append(l.errs, &Error{Names: names, Problem: problem})
}

// Addf records a problem with one setting.
func (l *List) Addf(name, format string, args ...any) {
	l.Add(fmt.Sprintf(format, args...), name)
}

// Join records err (nil is ignored), splitting an errors.Join of several
// problems into its parts.
func (l *List) Join(err error) { l.errs = append(l.errs, Split(err)...) }

// Err returns every problem recorded, joined, or nil.
func (l *List) Err() error { return errors.Join(l.errs...) }

// Split returns the parts of an errors.Join error, err itself otherwise,
// and nothing for nil.
func Split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Split(e)...)
		}
		return out
	}
	return []error{err}
}

// Rename rewrites the names of every *Error in err (joined or not) with
// rename, which is given the name without any "[i]" index suffix; the
// suffix is kept. Other errors are returned unchanged.
func Rename(err error, rename func(name string) string) error {
	var out []error
	for _, e := range Split(err) {
		fe, ok := e.(*Error)
		if !ok {
			out = append(out, e)
			continue
		}
		names := make([]string, len(fe.Names))
		for i, n := range fe.Names {
			base, index, _ := strings.Cut(n, "[")
			if index != "" {
				index = "[" + index
			}
			names[i] = rename(base) + index
		}
		out = append(out, &Error{Names: names, Problem: fe.Problem})
	}
	return errors.Join(out...)
}

// Prefix puts prefix before every name in err's *Errors: a package that
// embeds another's Config names its fields in its own terms (audit's
// "buffer" is serve's "audit-buffer").
func Prefix(err error, prefix string) error {
	return Rename(err, func(name string) string { return prefix + name })
}
