package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/bench"
	"github.com/keygate/keygate/bench/proc"
)

const checkPath = "/" + bench.CheckMethod

// rawCodec sends pre-encoded request bytes and returns the response bytes
// undecoded, so the built-in generator spends no CPU marshalling.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

// template is an encoded CheckRequest whose key can be swapped in place
// (every key of one prefix has the same length).
type template struct {
	buf []byte
	off int
	n   int
}

func newTemplate(req bench.Request, keyLen int) (*template, error) {
	placeholder := bytes.Repeat([]byte{'Z'}, keyLen)
	req.Key = string(placeholder)
	buf, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	off := bytes.Index(buf, placeholder)
	if off < 0 || bytes.LastIndex(buf, placeholder) != off {
		return nil, errors.New("template: key placeholder not found exactly once")
	}
	return &template{buf: buf, off: off, n: keyLen}, nil
}

// with returns the request carrying key (which must have the template's length).
func (t *template) with(key string) []byte {
	b := bytes.Clone(t.buf)
	copy(b[t.off:t.off+t.n], key)
	return b
}

// outcome names a decision: "allow", or "deny <HTTP status> <reason>".
func outcome(resp []byte) string {
	var r authv3.CheckResponse
	if err := proto.Unmarshal(resp, &r); err != nil {
		return "undecodable response"
	}
	if r.GetStatus().GetCode() == 0 {
		return "allow"
	}
	d := r.GetDeniedResponse()
	var body struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal([]byte(d.GetBody()), &body)
	if body.Reason == "" {
		return fmt.Sprintf("deny %d", d.GetStatus().GetCode())
	}
	return fmt.Sprintf("deny %d %s", d.GetStatus().GetCode(), body.Reason)
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
}

// checkOnce sends one request and names the decision.
func checkOnce(ctx context.Context, addr string, req []byte) (string, error) {
	conn, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, checkPath, req, &resp); err != nil {
		return "", fmt.Errorf("check: %w", err)
	}
	return outcome(resp), nil
}

// load is one run of the built-in generator: n requests, req(i) for the
// i-th, from conc workers that start together, bounded by timeout. With
// dur > 0 the workers also stop sending after dur and the run ends with
// the answers in flight (as ghz -x with --duration-stop ignore); timeout
// stays the hard bound, and cuts requests still unanswered.
type load struct {
	target  *proc.Server
	conc, n int
	req     func(i int) []byte
	dur     time.Duration
	timeout time.Duration
}

// worker's tally, merged after the run.
type tally struct {
	lat      []time.Duration
	outcomes map[string]int
	errors   map[string]int
}

func (h *harness) runBuiltin(ctx context.Context, l load) (bench.Run, error) {
	conns, err := h.dialAll(ctx, l.target.Addr, min(h.cfg.Connections, l.conc))
	if err != nil {
		return bench.Run{}, err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	pid := l.target.PID()
	proc.ResetPeakRSS(pid)
	srv0, err1 := proc.CPUSeconds(pid)
	self0, err2 := proc.CPUSeconds(os.Getpid())
	if err := errors.Join(err1, err2); err != nil {
		return bench.Run{}, err
	}
	tallies, secs := fire(ctx, conns, l)
	srv1, err1 := proc.CPUSeconds(pid)
	self1, err2 := proc.CPUSeconds(os.Getpid())
	if err := errors.Join(err1, err2); err != nil {
		return bench.Run{}, err
	}
	run := merge(tallies)
	run.Seconds, run.ServerCPUS, run.ClientCPUS = secs, srv1-srv0, self1-self0
	run.MaxRSSKiB = proc.PeakRSSKiB(pid)
	run.Finish()
	return run, nil
}

// dialAll opens n connections and makes sure each is up (one Check with an
// empty request), so connection set-up is not measured.
func (h *harness) dialAll(ctx context.Context, addr string, n int) ([]*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	for range max(n, 1) {
		c, err := dial(addr)
		if err == nil {
			var resp []byte
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = c.Invoke(cctx, checkPath, []byte{}, &resp)
			cancel()
		}
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("connect %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// fire runs the workers and returns their tallies and the wall time.
func fire(ctx context.Context, conns []*grpc.ClientConn, l load) ([]tally, float64) {
	var next atomic.Int64
	var stop atomic.Bool // dur is over
	tallies := make([]tally, l.conc)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range l.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, t := conns[w%len(conns)], &tallies[w]
			t.outcomes, t.errors = map[string]int{}, map[string]int{}
			var resp []byte
			<-start
			for i := int(next.Add(1) - 1); i < l.n && ctx.Err() == nil && !stop.Load(); i = int(next.Add(1) - 1) {
				t.one(ctx, conn, l.req(i), &resp)
			}
		}()
	}
	t0 := time.Now()
	if l.dur > 0 {
		timer := time.AfterFunc(l.dur, func() { stop.Store(true) })
		defer timer.Stop()
	}
	close(start)
	wg.Wait()
	return tallies, time.Since(t0).Seconds()
}

func (t *tally) one(ctx context.Context, conn *grpc.ClientConn, req []byte, resp *[]byte) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t0 := time.Now()
	err := conn.Invoke(ctx, checkPath, req, resp)
	d := time.Since(t0)
	if err != nil {
		t.errors[status.Code(err).String()]++
		return
	}
	t.lat = append(t.lat, d)
	t.outcomes[outcome(*resp)]++
}

func merge(tallies []tally) bench.Run {
	var r bench.Run
	for _, t := range tallies {
		r.Lat = append(r.Lat, t.lat...)
		r.OK += len(t.lat)
		for k, v := range t.outcomes {
			if r.Outcomes == nil {
				r.Outcomes = map[string]int{}
			}
			r.Outcomes[k] += v
		}
		for k, v := range t.errors {
			if r.Errors == nil {
				r.Errors = map[string]int{}
			}
			r.Errors[k] += v
			r.Requests += v
		}
	}
	r.Requests += r.OK
	return r
}
