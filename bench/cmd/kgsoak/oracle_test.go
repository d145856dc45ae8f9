package main

import (
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	testB  = bounds{propagation: 3 * time.Second, clock: 500 * time.Millisecond}
	rtt    = 2 * time.Millisecond // a Check's round trip in these tables
	active = life{created: t0}
)

func at(d time.Duration) time.Time { return t0.Add(d) }

// expiring is a key created at t0 with expires_at t0+20s.
var expiring = life{created: t0, allowUntil: at(20 * time.Second), expires: at(20 * time.Second)}

// revoked is a key created at t0 and revoked by a command that ran 10s..10.3s.
var revoked = life{created: t0, revokeStart: at(10 * time.Second), revokeEnd: at(10300 * time.Millisecond)}

// rotatedOut is a key created at t0 and rotated at 10s..10.4s with a 10s
// grace; the rotation reported expires_at 20s.
var rotatedOut = life{created: t0, allowUntil: at(20 * time.Second), expires: at(20 * time.Second), expiresKnown: at(10400 * time.Millisecond)}

type oracleCase struct {
	name string
	l    life
	sent time.Time
}

func TestOracleMustAllow(t *testing.T) {
	for _, c := range []oracleCase{
		{"active key", active, at(10 * time.Second)},
		{"active key just created", active, t0},
		{"expiring key before its expiry", expiring, at(19 * time.Second)},
		{"revoked key before the revoke started", revoked, at(9 * time.Second)},
		{"rotated-out key inside its grace", rotatedOut, at(15 * time.Second)},
		{"rotated-out key before the rotation", life{created: t0}, at(9 * time.Second)},
	} {
		checkExpect(t, c, mustAllow)
	}
}

func TestOracleMustDeny(t *testing.T) {
	for _, c := range []oracleCase{
		{"unknown key", life{unknown: true}, t0},
		{"revoked key past the propagation bound", revoked, at(13400 * time.Millisecond)},
		{"revoked key long after", revoked, at(time.Hour)},
		{"key created with an expiry, past it", expiring, at(20600 * time.Millisecond)},
		{"rotated-out key past its grace", rotatedOut, at(21 * time.Second)},
		{"rotated with a short grace, past the propagation bound", life{created: t0, allowUntil: at(10 * time.Second),
			expires: at(11 * time.Second), expiresKnown: at(10500 * time.Millisecond)}, at(13600 * time.Millisecond)},
	} {
		checkExpect(t, c, mustDeny)
	}
}

func TestOracleEither(t *testing.T) {
	for _, c := range []oracleCase{
		{"revoke running", revoked, at(10100 * time.Millisecond)},
		{"revoked, inside the propagation bound", revoked, at(12 * time.Second)},
		{"revoke failed (no end)", life{created: t0, revokeStart: at(10 * time.Second)}, at(time.Hour)},
		{"expiry inside the clock margin (before)", expiring, at(19700 * time.Millisecond)},
		{"expiry inside the clock margin (after)", expiring, at(20300 * time.Millisecond)},
		{"rotation running: expiry not known yet", life{created: t0, allowUntil: at(19 * time.Second)}, at(19 * time.Second)},
		{"rotated with a short grace, inside the propagation bound", life{created: t0, allowUntil: at(10 * time.Second),
			expires: at(11 * time.Second), expiresKnown: at(10500 * time.Millisecond)}, at(12 * time.Second)},
		{"sent before the key existed", active, at(-time.Second)},
	} {
		checkExpect(t, c, either)
	}
}

func checkExpect(t *testing.T, c oracleCase, want expect) {
	t.Helper()
	if got := c.l.expectFor(c.sent, c.sent.Add(rtt), testB); got != want {
		t.Errorf("%s: got %v, want %v (%s)", c.name, got, want, c.l.describe(c.sent))
	}
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name    string
		l       life
		sent    time.Time
		allowed bool
		wrong   bool
	}{
		{"active allowed", active, at(time.Second), true, false},
		{"active denied", active, at(time.Second), false, true},
		{"revoked allowed past the bound", revoked, at(14 * time.Second), true, true},
		{"revoked denied past the bound", revoked, at(14 * time.Second), false, false},
		{"revoked allowed inside the bound", revoked, at(11 * time.Second), true, false},
		{"revoked denied inside the bound", revoked, at(11 * time.Second), false, false},
		{"unknown allowed", life{unknown: true}, t0, true, true},
		{"expired allowed", expiring, at(21 * time.Second), true, true},
	} {
		if _, wrong := judge(&c.l, c.sent, c.sent.Add(rtt), c.allowed, testB); wrong != c.wrong {
			t.Errorf("%s: wrong = %v, want %v", c.name, wrong, c.wrong)
		}
	}
}

// A decision that straddles a boundary is judged by the later end for
// allows and the earlier end for denies: a slow answer is never blamed.
func TestOracleUsesBothEnds(t *testing.T) {
	sent, recv := at(13200*time.Millisecond), at(13500*time.Millisecond) // revoked's bound ends at 13.3s
	if got := revoked.expectFor(sent, recv, testB); got != either {
		t.Errorf("revoked, bound ends in flight: got %v, want either", got)
	}
	sent, recv = at(19400*time.Millisecond), at(19600*time.Millisecond) // expiring's margin starts at 19.5s
	if got := expiring.expectFor(sent, recv, testB); got != either {
		t.Errorf("expiring, margin starts in flight: got %v, want either", got)
	}
}

func TestDescribeNamesNoKey(t *testing.T) {
	s := rotatedOut.describe(at(21 * time.Second))
	for _, want := range []string{"created -21.00s", "expires -1.00s", "rotation ending -10.60s"} {
		if !strings.Contains(s, want) {
			t.Errorf("describe = %q, want it to contain %q", s, want)
		}
	}
}
