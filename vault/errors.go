package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is a Vault request that failed without saying anything about the
// key: Vault was unreachable, slow, sealed, rate limiting, refusing the
// token, or answered with something other than a KV v2 record or 404.
// Callers treat it as transient. It is never policy.ErrKeyNotFound or
// policy.ErrInvalidRecord, and its text never contains the Vault token.
type Error struct {
	Op     Operation // what was asked of Vault
	KeyID  string    // the key id, "" for operations on no key
	Status int       // HTTP status, 0 if no response arrived
	Err    error     // the cause; for HTTP errors, Vault's messages
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("vault: ")
	b.WriteString(string(e.Op))
	if e.KeyID != "" {
		b.WriteString(" ")
		b.WriteString(e.KeyID)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Error classes returned by Class: a closed set for metric labels.
const (
	ClassTimeout     = "timeout"      // the context or client deadline passed
	ClassCanceled    = "canceled"     // the caller's context was canceled
	ClassUnreachable = "unreachable"  // no HTTP response (refused, reset, DNS, TLS)
	ClassForbidden   = "forbidden"    // 403: token expired, revoked or lacking policy
	ClassRateLimited = "rate_limited" // 429: Vault quota
	ClassUnavailable = "unavailable"  // 503: sealed, standby, or proxy
	ClassServerError = "server_error" // other 5xx
	ClassClientError = "client_error" // other 4xx (incl. 404 "no handler for route")
	ClassBadResponse = "bad_response" // 2xx that is not a KV v2 response
)

// Class returns the error's class, one of the Class* constants.
func (e *Error) Class() string {
	switch {
	case errors.Is(e.Err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(e.Err, context.Canceled):
		return ClassCanceled
	case e.Status == 0:
		return ClassUnreachable
	case e.Status == http.StatusForbidden:
		return ClassForbidden
	case e.Status == http.StatusTooManyRequests:
		return ClassRateLimited
	case e.Status == http.StatusServiceUnavailable:
		return ClassUnavailable
	case e.Status >= 500:
		return ClassServerError
	case e.Status >= 400:
		return ClassClientError
	}
	return ClassBadResponse
}
