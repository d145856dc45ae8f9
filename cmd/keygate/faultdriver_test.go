package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// keyClass is what a key is to keygate when a fault starts.
type keyClass int

const (
	keyCached   keyClass = iota // valid, read before the fault: in the cache
	keyUncached                 // valid, never Checked before the fault
	keyRevoked                  // revoked with the CLI, read as revoked before the fault
	keyUnread                   // valid and cached, then revoked straight in Vault just before the fault: keygate has not read it
	nKeyClasses
)

func (k keyClass) String() string {
	return [...]string{"cached", "uncached", "revoked", "unread revocation"}[k]
}

// faultKeys are one row's keys, by class.
type faultKeys [nKeyClasses]created

// decision is one Check the driver sent: when, for which key, and what
// keygate answered (status 0: no CheckResponse, the error in reason).
type decision struct {
	class      keyClass
	start, end time.Time
	status     int
	reason     string
}

// Bounds on the driver: two workers, a round of Checks every 20 ms each,
// at most driverMaxRounds rounds and driverMaxRecorded decisions kept.
const (
	driverWorkers     = 2
	driverEvery       = 20 * time.Millisecond
	driverMaxRounds   = 1500 // 30 s at 20 ms
	driverMaxRecorded = 40_000
	driverRPCTimeout  = 3 * time.Second
)

// driver sends Checks for a row's keys continuously and records every
// decision. The uncached key is Checked only from uncachedFrom on: one
// successful Check would cache it.
type driver struct {
	s        *server
	requests [nKeyClasses]*authv3.CheckRequest
	uncached atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup

	mu        sync.Mutex
	decisions []decision
	dropped   int
}

func startDriver(t *testing.T, s *server, keys faultKeys) *driver {
	t.Helper()
	d := &driver{s: s, stop: make(chan struct{})}
	for k, key := range keys {
		f := checkFlags{method: "GET", path: "/orders", host: "api.example.com", sourceIP: "10.1.2.3", keyHeader: "x-api-key", key: key.Key}
		req, err := f.request(nil)
		if err != nil {
			t.Fatal(err)
		}
		d.requests[k] = req
	}
	for range driverWorkers {
		d.wg.Go(d.work)
	}
	t.Cleanup(func() { d.halt() })
	return d
}

// checkUncached starts Checking the uncached key.
func (d *driver) checkUncached() { d.uncached.Store(true) }

func (d *driver) work() {
	tick := time.NewTicker(driverEvery)
	defer tick.Stop()
	for range driverMaxRounds {
		for k := range nKeyClasses {
			if k != keyUncached || d.uncached.Load() {
				d.record(d.check(k))
			}
		}
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
	}
}

func (d *driver) check(k keyClass) decision {
	ctx, cancel := context.WithTimeout(context.Background(), driverRPCTimeout)
	defer cancel()
	dec := decision{class: k, start: time.Now()}
	resp, err := d.s.client.Check(ctx, d.requests[k])
	dec.end = time.Now()
	if err != nil {
		dec.reason = "gRPC error: " + err.Error()
		return dec
	}
	o := toOutcome(resp)
	dec.status, dec.reason = o.status, o.reason
	return dec
}

func (d *driver) record(dec decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.decisions) >= driverMaxRecorded {
		d.dropped++
		return
	}
	d.decisions = append(d.decisions, dec)
}

// halt stops the workers and returns every decision, by start time.
func (d *driver) halt() []decision {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.wg.Wait()
	return d.sofar()
}

// sofar returns the decisions recorded so far, by start time.
func (d *driver) sofar() []decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Clone(d.decisions)
	slices.SortFunc(out, func(a, b decision) int { return a.start.Compare(b.start) })
	return out
}

// await polls the decisions every 20 ms until done holds or bound passes.
func (d *driver) await(bound time.Duration, done func([]decision) bool) bool {
	for end := time.Now().Add(bound); time.Now().Before(end); time.Sleep(driverEvery) {
		if done(d.sofar()) {
			return true
		}
	}
	return false
}

// faultTimes are a row's moments. A decision counts as "during" the fault
// if it started after the fault was on and ended before its removal began,
// and as "after" if it started once the removal was complete.
type faultTimes struct {
	injectStart, faultOn   time.Time
	removeStart, removedAt time.Time // zero: the fault is never removed
	unreadRevoked          time.Time // when the unread key was revoked in Vault
}

type phase int

const (
	phaseBefore phase = iota
	phaseDuring
	phaseEdge // across a boundary: only the invariants apply
	phaseAfter
)

func (ft faultTimes) removed() bool { return !ft.removedAt.IsZero() }

func (ft faultTimes) phase(d decision) phase {
	switch {
	case !d.end.After(ft.injectStart):
		return phaseBefore
	case !d.start.Before(ft.faultOn) && (!ft.removed() || !d.end.After(ft.removeStart)):
		return phaseDuring
	case ft.removed() && !d.start.Before(ft.removedAt):
		return phaseAfter
	}
	return phaseEdge
}

func (d decision) is(status int, reason string) bool { return d.status == status && d.reason == reason }

func (d decision) String() string {
	return fmt.Sprintf("%s key: %d %s (sent %s, took %s)", d.class, d.status, d.reason,
		d.start.Format("15:04:05.000"), d.end.Sub(d.start).Round(time.Millisecond))
}

// wrong says what is wrong with one decision on its own, or "". The rules:
// a valid key is never denied except with 503 store_unavailable, and a
// cached one never at all (the faults are shorter than the stale window);
// the uncached key is denied 503 while the fault is on; a revoked key is
// never allowed; a key revoked in Vault but not yet read is allowed at
// most until its revocation plus found-ttl plus stale-ttl.
func (ft faultTimes) wrong(d decision) string {
	unavailable := d.is(503, "store_unavailable")
	switch {
	case d.status == 0:
		return "no CheckResponse"
	case d.class == keyCached && d.status != 200:
		return "valid cached key denied"
	case d.class == keyUncached && d.status == 200 && ft.phase(d) == phaseDuring:
		return "uncached key allowed while the fault was on: the fault did not bite"
	case d.class == keyUncached && d.status != 200 && !unavailable:
		return "valid key denied other than 503 store_unavailable"
	case d.class == keyRevoked && d.status == 200:
		return "revoked key allowed"
	case d.class == keyUnread && d.status == 200 && d.start.After(ft.unreadRevoked.Add(faultFoundTTL+faultStaleTTL)):
		return "revoked key allowed past found-ttl + stale-ttl after its revocation"
	case (d.class == keyRevoked || d.class == keyUnread) && d.status != 200 && !unavailable && !d.is(401, "revoked_key"):
		return "revoked key denied other than 401 revoked_key or 503"
	}
	return ""
}

// verdict is a row's decisions judged and summed up.
type verdict struct {
	checks, allowed [nKeyClasses]int
	uncachedDuring  int           // uncached Checks while the fault was on
	uncached503     int           // ... of which denied 503 store_unavailable
	staleFor        time.Duration // last cached allow while the fault was on, from its start
	recovery        time.Duration // removal → first uncached allow; -1: none
	unreadDenied    time.Duration // removal → first revoked_key for the unread key; -1: none
	unreadAllowed   time.Duration // last allow of the unread key after its revocation; -1: none
	maxLatency      time.Duration
	nWrong          int
	wrong           []string // the first maxWrongNoted
}

const maxWrongNoted = 10

func (v *verdict) fail(what string, d decision) {
	if v.nWrong++; len(v.wrong) < maxWrongNoted {
		v.wrong = append(v.wrong, what+": "+d.String())
	}
}

// judge applies wrong to every decision, and the rules about order: once
// allowed after the removal, the uncached key stays allowed; once keygate
// has answered revoked_key for the unread revocation, that key is never
// allowed again (by Checks sent after that answer).
func (ft faultTimes) judge(ds []decision) verdict {
	v := verdict{recovery: -1, unreadDenied: -1, unreadAllowed: -1}
	var recovered, unreadSeen time.Time
	for _, d := range ds {
		v.count(ft, d)
		if w := ft.wrong(d); w != "" {
			v.fail(w, d)
		}
		switch {
		case d.class == keyUncached && d.status == 200 && ft.removed() && !d.end.Before(ft.removedAt) && recovered.IsZero():
			recovered, v.recovery = d.end, d.end.Sub(ft.removedAt)
		case d.class == keyUncached && d.status != 200 && !recovered.IsZero() && d.start.After(recovered):
			v.fail("valid key denied again after recovery", d)
		case d.class == keyUnread && d.status == 200 && !unreadSeen.IsZero() && d.start.After(unreadSeen):
			v.fail("key allowed again after keygate read its revocation", d)
		case d.class == keyUnread && d.is(401, "revoked_key"):
			if unreadSeen.IsZero() || d.end.Before(unreadSeen) {
				unreadSeen = d.end
			}
			if ft.phase(d) == phaseAfter && v.unreadDenied < 0 {
				v.unreadDenied = d.end.Sub(ft.removedAt)
			}
		}
	}
	return v
}

// count adds d to the sums.
func (v *verdict) count(ft faultTimes, d decision) {
	v.checks[d.class]++
	v.maxLatency = max(v.maxLatency, d.end.Sub(d.start))
	during := ft.phase(d) == phaseDuring
	if d.status == 200 {
		v.allowed[d.class]++
	}
	switch {
	case d.class == keyCached && d.status == 200 && during:
		v.staleFor = max(v.staleFor, d.start.Sub(ft.faultOn))
	case d.class == keyUncached && during:
		v.uncachedDuring++
		if d.is(503, "store_unavailable") {
			v.uncached503++
		}
	case d.class == keyUnread && d.status == 200 && d.start.After(ft.unreadRevoked):
		v.unreadAllowed = d.start.Sub(ft.unreadRevoked)
	}
}

// faultTable is the markdown the matrix prints for docs/reliability.md.
func faultTable(rows []rowResult) string {
	out := "| fault | cached keys | uncached | revoked | recovery after removal (ms) | goroutines before/after |\n" +
		"|---|---|---|---|---|---|\n"
	for _, r := range rows {
		v := r.v
		out += fmt.Sprintf("| %s | %s | %s | %s | %s | %d/%d |\n", r.name, v.cachedCell(), v.uncachedCell(),
			v.revokedCell(), v.recoveryCell(), r.goroutines[0], r.goroutines[1])
	}
	return out
}

func (v verdict) cachedCell() string {
	return fmt.Sprintf("%d/%d allowed, stale to +%.1f s", v.allowed[keyCached], v.checks[keyCached], v.staleFor.Seconds())
}

func (v verdict) uncachedCell() string {
	s := fmt.Sprintf("%d/%d denied 503", v.uncached503, v.uncachedDuring)
	if v.recovery >= 0 {
		s += ", then allowed"
	}
	return s
}

func (v verdict) revokedCell() string {
	s := fmt.Sprintf("%d/%d allowed", v.allowed[keyRevoked], v.checks[keyRevoked])
	if v.unreadAllowed >= 0 {
		s += fmt.Sprintf("; unread revocation allowed to +%.1f s", v.unreadAllowed.Seconds())
	}
	if v.unreadDenied >= 0 {
		s += fmt.Sprintf(", denied %d ms after removal", v.unreadDenied.Milliseconds())
	}
	return s
}

func (v verdict) recoveryCell() string {
	if v.recovery < 0 {
		return "—"
	}
	return fmt.Sprint(v.recovery.Milliseconds())
}
