package main

import (
	"fmt"
	"time"
)

// life is what the churn did to one key and when, as seen from the soak:
// the oracle's whole input. Every time is taken by the soak before it
// starts or after it finishes the CLI command that made the change, so the
// change happened inside [start, end].
type life struct {
	unknown bool // never issued (well-formed unknown or malformed): denied always

	created time.Time // `keys create` / `keys rotate` returned: the key exists from here

	// allowUntil: the key must be allowed before this (less the clock
	// margin); zero means no end. Set from expires_at at creation, and at the
	// start of a rotation from the earliest expiry the rotation can set.
	allowUntil time.Time

	// expires is the key's expires_at as stored. expiresKnown is when a
	// change (a rotation) wrote it to a record keygate may have cached
	// without it; zero when the key was created with it. Past the expiry
	// plus the clock margin, and past expiresKnown plus propagation, the key
	// must be denied.
	expires, expiresKnown time.Time

	revokeStart, revokeEnd time.Time // `keys revoke` ran in [start, end]
}

// bounds are the oracle's tolerances.
type bounds struct {
	// propagation: how long a CLI change may take to reach keygate's cache
	// (journal poll + margin).
	propagation time.Duration
	// clock: margin around an expiry, which keygate checks against its own
	// clock at decision time.
	clock time.Duration
}

// expect is what the oracle requires of one decision.
type expect int

const (
	either    expect = iota // inside a transition window: allow and deny are both right
	mustAllow               // active, not in any transition
	mustDeny                // unknown, or past a revocation or expiry plus its bound
)

func (e expect) String() string {
	return [...]string{"either", "must-allow", "must-deny"}[e]
}

// deniedAt reports whether every correct keygate denies the key at t.
func (l *life) deniedAt(t time.Time, b bounds) bool {
	switch {
	case l.unknown:
		return true
	case !l.revokeEnd.IsZero() && t.After(l.revokeEnd.Add(b.propagation)):
		return true
	case !l.expires.IsZero() && t.After(l.expires.Add(b.clock)):
		return l.expiresKnown.IsZero() || t.After(l.expiresKnown.Add(b.propagation))
	}
	return false
}

// allowedAt reports whether every correct keygate allows the key at t.
func (l *life) allowedAt(t time.Time, b bounds) bool {
	switch {
	case l.unknown, t.Before(l.created):
		return false
	case !l.revokeStart.IsZero() && !t.Before(l.revokeStart):
		return false
	case !l.allowUntil.IsZero() && !t.Before(l.allowUntil.Add(-b.clock)):
		return false
	}
	return true
}

// expectFor is what the oracle requires of a decision made at some time in
// [sent, recv]: denials only grow with time, so a key denied at sent is
// denied throughout, and one allowed at recv was allowed throughout.
func (l *life) expectFor(sent, recv time.Time, b bounds) expect {
	switch {
	case l.deniedAt(sent, b):
		return mustDeny
	case l.allowedAt(recv, b):
		return mustAllow
	}
	return either
}

// judge says whether a decision (allowed or not) is wrong for the key.
func judge(l *life, sent, recv time.Time, allowed bool, b bounds) (expect, bool) {
	e := l.expectFor(sent, recv, b)
	return e, (e == mustDeny && allowed) || (e == mustAllow && !allowed)
}

// effective is when the key's revocation or expiry took effect in the
// store (zero if neither has): the end of the revoke command, or expires_at.
func (l *life) effective() time.Time {
	if !l.revokeEnd.IsZero() {
		return l.revokeEnd
	}
	return l.expires
}

// describe summarises the key's history relative to t, for a wrong
// decision's report (times as offsets, never a key).
func (l *life) describe(t time.Time) string {
	if l.unknown {
		return "never issued"
	}
	rel := func(x time.Time) string { return fmt.Sprintf("%+.2fs", x.Sub(t).Seconds()) }
	s := "created " + rel(l.created)
	if !l.revokeStart.IsZero() {
		s += ", revoke ran " + rel(l.revokeStart) + ".." + rel(l.revokeEnd)
	}
	if !l.expires.IsZero() {
		s += ", expires " + rel(l.expires)
		if !l.expiresKnown.IsZero() {
			s += " (set by a rotation ending " + rel(l.expiresKnown) + ")"
		}
	} else if !l.allowUntil.IsZero() {
		s += ", allowed until " + rel(l.allowUntil) + " at least"
	}
	return s
}
