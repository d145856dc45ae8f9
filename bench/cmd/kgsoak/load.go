package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// maxExamples is how many wrong decisions are kept for the report (the
// first for each key and expectation).
const maxExamples = 5

// wrongCase is one wrong decision, described by key id only.
type wrongCase struct {
	KeyID   string  `json:"key_id"`
	Label   string  `json:"label"`
	Expect  string  `json:"expected"`
	Outcome string  `json:"outcome"`
	AtS     float64 `json:"at_s"` // seconds into the soak
	History string  `json:"history"`
}

// results is every decision the load saw, judged by the oracle.
type results struct {
	mu       sync.Mutex
	start    time.Time
	b        bounds
	n        int
	errors   map[string]int            // gRPC errors by code
	byExpect map[string]map[string]int // expectation → outcome → count
	byLabel  map[string]map[string]int // key label at send → outcome → count
	wrong    int
	examples []wrongCase
	lat      []time.Duration
	// late is, per key label, the latest allow seen after the key's change
	// took effect in the store (the revoke command returned, or the expiry
	// passed): how long the change took to reach keygate's decisions.
	late map[string]time.Duration
}

func newResults(start time.Time, b bounds) *results {
	return &results{start: start, b: b, errors: map[string]int{},
		byExpect: map[string]map[string]int{}, byLabel: map[string]map[string]int{}, late: map[string]time.Duration{}}
}

func bump(m map[string]map[string]int, k, v string) {
	if m[k] == nil {
		m[k] = map[string]int{}
	}
	m[k][v]++
}

// record judges one answered Check and counts it.
func (r *results) record(k *key, label string, l life, sent, recv time.Time, resp *authv3.CheckResponse) {
	allowed := resp.GetStatus().GetCode() == 0
	e, wrong := judge(&l, sent, recv, allowed, r.b)
	out := outcome(resp)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.lat = append(r.lat, recv.Sub(sent))
	bump(r.byExpect, e.String(), out)
	bump(r.byLabel, label, out)
	if edge := l.effective(); allowed && !edge.IsZero() && sent.After(edge) {
		r.late[label] = max(r.late[label], sent.Sub(edge))
	}
	if !wrong {
		return
	}
	r.wrong++
	seen := slices.ContainsFunc(r.examples, func(w wrongCase) bool { return w.KeyID == k.id && w.Expect == e.String() })
	if len(r.examples) < maxExamples && !seen {
		r.examples = append(r.examples, wrongCase{KeyID: k.id, Label: label, Expect: e.String(), Outcome: out,
			AtS: sent.Sub(r.start).Seconds(), History: l.describe(sent)})
	}
}

func (r *results) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.errors[status.Code(err).String()]++
}

// counts is how many Checks were answered so far (errors included).
func (r *results) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// outcome names a decision: "allow", or "deny <HTTP status> <reason>".
func outcome(resp *authv3.CheckResponse) string {
	if resp.GetStatus().GetCode() == 0 {
		return "allow"
	}
	d := resp.GetDeniedResponse()
	var body struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal([]byte(d.GetBody()), &body)
	return fmt.Sprintf("deny %d %s", d.GetStatus().GetCode(), body.Reason)
}

// load sends Checks at a steady total rate from workers spread over conns
// gRPC connections until ctx ends.
type load struct {
	addr    string
	rate    int
	conns   int
	workers int // per connection
	pool    *pool
	res     *results
}

func (l *load) run(ctx context.Context) error {
	lim := rate.NewLimiter(rate.Limit(l.rate), 1)
	var wg sync.WaitGroup
	for c := range l.conns {
		conn, err := grpc.NewClient(l.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		client := authv3.NewAuthorizationClient(conn)
		for w := range l.workers {
			wg.Add(1)
			rng := rand.New(rand.NewPCG(uint64(c), uint64(w)))
			go func() {
				defer wg.Done()
				l.worker(ctx, client, lim, rng)
			}()
		}
	}
	wg.Wait()
	return nil
}

func (l *load) worker(ctx context.Context, client authv3.AuthorizationClient, lim *rate.Limiter, rng *rand.Rand) {
	for lim.Wait(ctx) == nil {
		k, label := l.pool.pick(rng)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sent := time.Now()
		resp, err := client.Check(cctx, k.req)
		recv := time.Now()
		cancel()
		switch {
		case ctx.Err() != nil:
			return // the soak ended during this Check: not counted
		case err != nil:
			l.res.failed(err)
		default:
			l.res.record(k, label, l.pool.lifeOf(k), sent, recv, resp)
		}
	}
}
