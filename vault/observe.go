package vault

import (
	"errors"
	"time"

	"github.com/keygate/keygate/policy"
)

// Observer is told about every Vault request the Store makes, once: its
// operation (one of the Op* constants but OpLogin), its outcome class
// (ClassOK, ClassNotFound, ClassInvalidRecord or one of Error's classes)
// and how long it took. It must be cheap and safe for concurrent use.
// Metrics use it; the Store works without one.
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
func (s *Store) observed(op Operation, start time.Time, absent bool, err error) {
	if s.observe == nil {
		return
	}
	s.observe(string(op), outcomeClass(absent, err), time.Since(start))
}

// outcomeClass classifies a request's result, its error already in
// requestError's form, for metrics.
func outcomeClass(absent bool, err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Class()
	case errors.Is(err, policy.ErrInvalidRecord):
		return ClassInvalidRecord
	case err != nil: // not requestError's form: classify it as it would
		return (&Error{Err: err}).Class()
	case absent:
		return ClassNotFound
	}
	return ClassOK
}
