package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxyMode is what the fault proxy does to traffic from keygate to Vault.
type proxyMode int

const (
	proxyPass  proxyMode = iota // forward both ways
	proxySlow                   // forward, each chunk towards Vault delayed by the latency
	proxyStall                  // accept and read, never forward, never answer
	proxyReset                  // reset (SetLinger(0), Close) at accept and at the next chunk
)

func (m proxyMode) String() string {
	return [...]string{"pass", "slow", "stall", "reset"}[m]
}

// Bounds on the proxy's loops: a connection lives at most proxyConnLife
// and forwards at most proxyMaxChunks reads; the proxy accepts at most
// proxyMaxConns connections.
const (
	proxyConnLife  = 2 * time.Minute
	proxyMaxChunks = 1 << 20
	proxyMaxConns  = 1 << 16
)

// faultProxy is a loopback TCP proxy between keygate and Vault. In its
// pass mode it is transparent; the other modes are faults a real Vault
// does not produce on demand. A mode applies to new connections at accept
// and to open ones at their next chunk towards Vault, so keep-alive
// connections cannot slip past a fault.
type faultProxy struct {
	ln       net.Listener
	upstream string // Vault's host:port
	latency  time.Duration
	done     chan struct{} // closed by close: ends sleeps
	wg       sync.WaitGroup

	mu      sync.Mutex
	mode    proxyMode
	conns   map[net.Conn]bool // every open connection, both sides; true: stalled
	closed  bool
	resets  int // connections reset on purpose
	refused int // connections reset because Vault could not be dialled
}

// startFaultProxy listens on a loopback port and forwards to upstream (an
// http://host:port address or host:port). It is closed at cleanup.
func startFaultProxy(t *testing.T, upstream string, latency time.Duration) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: hostPort(upstream), latency: latency,
		done: make(chan struct{}), conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func hostPort(addr string) string { return strings.TrimPrefix(addr, "http://") }

// addr is the proxy's address for VAULT_ADDR.
func (p *faultProxy) addr() string { return "http://" + p.ln.Addr().String() }

// set switches the mode. Leaving stall closes the stalled connections:
// the requests they swallowed will never be answered.
func (p *faultProxy) set(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == proxyStall {
		return
	}
	for c, stalled := range p.conns {
		if stalled {
			c.Close()
		}
	}
}

func (p *faultProxy) current() proxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// counts returns how many connections were reset on purpose and because
// Vault refused them, and how many are open now.
func (p *faultProxy) counts() (resets, refused, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets, p.refused, len(p.conns)
}

// closeConns closes every open connection (after keygate stopped: its
// idle pooled connections would otherwise outlive it).
func (p *faultProxy) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *faultProxy) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
		p.ln.Close()
	}
	p.mu.Unlock()
	p.closeConns()
	p.wg.Wait()
}

func (p *faultProxy) accept() {
	for range proxyMaxConns {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

// track registers c; false once the proxy is closed.
func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = false
	c.SetDeadline(time.Now().Add(proxyConnLife))
	return true
}

func (p *faultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *faultProxy) handle(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	defer p.untrack(c)
	switch p.current() {
	case proxyReset:
		p.reset(c, nil, false)
		return
	case proxyStall:
		p.stall(c)
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, time.Second)
	if err != nil { // Vault is down: keygate sees its connection reset
		p.reset(c, nil, true)
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	var down sync.WaitGroup
	down.Go(func() {
		io.Copy(c, up) // Vault → keygate: never delayed
		c.Close()
	})
	p.forward(c, up)
	up.Close()
	down.Wait()
}

// forward copies keygate → Vault a chunk at a time, applying the mode.
func (p *faultProxy) forward(c, up net.Conn) {
	buf := make([]byte, 32<<10)
	for range proxyMaxChunks {
		n, err := c.Read(buf)
		if n > 0 {
			switch p.current() {
			case proxySlow:
				if !p.sleep(p.latency) {
					return
				}
			case proxyStall:
				p.stall(c)
				return
			case proxyReset:
				p.reset(c, up, false)
				return
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stall reads and discards until the connection is closed (by keygate,
// by set, or at its deadline).
func (p *faultProxy) stall(c net.Conn) {
	p.mu.Lock()
	if _, ok := p.conns[c]; ok {
		p.conns[c] = true
	}
	p.mu.Unlock()
	buf := make([]byte, 4<<10)
	for range proxyMaxChunks {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// reset closes c (and up) with an RST instead of a FIN.
func (p *faultProxy) reset(c, up net.Conn, refused bool) {
	for _, conn := range []net.Conn{c, up} {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
			tc.Close()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if refused {
		p.refused++
	} else {
		p.resets++
	}
}

// sleep waits d unless the proxy closes first.
func (p *faultProxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// TestFaultProxy checks the proxy's modes on its own, against an echo
// server, so the fault matrix can trust them.
func TestFaultProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { echo.Close(); wg.Wait() })
	wg.Go(func() {
		for range 100 {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	p := startFaultProxy(t, echo.Addr().String(), 300*time.Millisecond)
	for _, tc := range []struct {
		mode    proxyMode
		wantErr bool
		minTook time.Duration
	}{{proxyPass, false, 0}, {proxySlow, false, 300 * time.Millisecond}, {proxyStall, true, 0}, {proxyReset, true, 0}} {
		p.set(tc.mode)
		took, err := roundTrip(p.ln.Addr().String())
		if (err != nil) != tc.wantErr || took < tc.minTook {
			t.Errorf("%v: round trip %v after %v; want error %v, at least %v", tc.mode, err, took, tc.wantErr, tc.minTook)
		}
	}
	if resets, _, _ := p.counts(); resets == 0 {
		t.Error("reset mode reset nothing")
	}
}

// roundTrip writes a line through the proxy and reads it back, giving up
// after 500 ms.
func roundTrip(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(start.Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return time.Since(start), err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return time.Since(start), err
	}
	if string(buf) != "ping\n" {
		return time.Since(start), errors.New("echo mismatch")
	}
	return time.Since(start), nil
}
