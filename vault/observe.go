package vault

import (
	"errors"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/policy"
)

// Observer is told about every Vault request the Store makes: its
// operation (lookup, get, list, journal, peppers, last_used, create,
// update, append_journal, init_pepper, record_usage, delete, delete_usage),
// its outcome class (ClassOK, ClassNotFound, ClassInvalidRecord or one of
// Error's classes) and how long it took. It must be cheap and safe for
// concurrent use. Metrics use it; the Store works without one.
type Observer func(op, class string, took time.Duration)

// Outcome classes besides Error's.
const (
	ClassOK            = "ok"
	ClassNotFound      = "not_found"
	ClassInvalidRecord = "invalid_record"
)

// SetObserver installs o; call it before the Store is used.
func (s *Store) SetObserver(o Observer) { s.observe = o }

// observed reports one request to the observer, if any.
func (s *Store) observed(op string, start time.Time, found bool, err error) {
	if s.observe == nil {
		return
	}
	s.observe(strings.ReplaceAll(op, " ", "_"), outcomeClass(found, err), time.Since(start))
}

// outcomeClass classifies a request's result for metrics.
func outcomeClass(found bool, err error) string {
	var e *Error
	var re *vaultapi.ResponseError
	switch {
	case errors.As(err, &e):
		return e.Class()
	case errors.As(err, &re): // writes go through vault/api's own errors
		return (&Error{Status: re.StatusCode, Err: err}).Class()
	case errors.Is(err, policy.ErrInvalidRecord):
		return ClassInvalidRecord
	case errors.Is(err, policy.ErrKeyNotFound), err == nil && !found:
		return ClassNotFound
	case err != nil:
		return (&Error{Err: err}).Class() // no response: timeout, canceled or unreachable
	}
	return ClassOK
}
