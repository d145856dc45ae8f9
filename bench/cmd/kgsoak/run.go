package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/bench/proc"
	"github.com/keygate/keygate/policy"
)

// soak is one run's moving parts.
type soak struct {
	cfg     *config
	kg      *proc.Server
	scr     scraper
	pool    *pool
	churn   *churner
	res     *results
	samples []sample
	elapsed time.Duration // of the load
}

// run starts Vault and keygate, creates the initial keys, soaks, and
// writes and prints the report.
func run(ctx context.Context, cfg *config) (*report, error) {
	tmp, err := os.MkdirTemp("", "kgsoak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // Vault's home and the servers' logs
	loadBefore := firstLine(os.ReadFile("/proc/loadavg"))
	v, err := proc.StartVault(ctx, cfg.vault, tmp)
	if err != nil {
		return nil, err
	}
	defer v.Stop()
	// The initial keys are created before keygate starts: written while it
	// ran, they would outrun the journal (KV v2 keeps 10 versions) and make
	// it drop its (still empty) cache, which the report would count.
	progress("Vault dev server on %s; network: %s; creating %d keys", v.Addr, cfg.Network, cfg.Keys)
	s, err := newSoak(cfg, v)
	if err != nil {
		return nil, err
	}
	if err := s.churn.initial(ctx, cfg.Keys); err != nil {
		return nil, err
	}
	if err := s.start(ctx, tmp, v); err != nil {
		return nil, err
	}
	defer s.kg.Stop()
	progress("keygate on %s", s.kg.Addr)
	if err := s.take(ctx, time.Now(), "start"); err != nil {
		return nil, err
	}
	progress("soaking for %v at %d Check/s; churn every %v", cfg.Duration, cfg.Rate, cfg.Churn)
	if err := s.drive(ctx); err != nil {
		tail(s.kg.Log)
		return nil, err
	}
	rep := s.report(loadBefore, version(cfg.keygate))
	rep.KeygateLog = logSummary(s.kg.Log)
	rep.print(os.Stdout)
	if err := rep.write(cfg.out); err != nil {
		return nil, err
	}
	if len(rep.problems()) > 0 {
		tail(s.kg.Log)
	}
	return rep, nil
}

// newSoak builds the key pool and the churn.
func newSoak(cfg *config, v *proc.Vault) (*soak, error) {
	format, err := policy.NewFormat(policy.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	p := &pool{format: format}
	if err := p.garbage(16); err != nil {
		return nil, err
	}
	ch := &churner{cli: cli{bin: cfg.keygate, env: v.Env()}, pool: p, rng: rand.New(rand.NewPCG(1, 2))}
	return &soak{cfg: cfg, pool: p, churn: ch}, nil
}

// start serves keygate on v with metrics and admin on loopback.
func (s *soak) start(ctx context.Context, tmp string, v *proc.Vault) error {
	metricsAddr, err1 := proc.FreeAddr()
	adminAddr, err2 := proc.FreeAddr()
	if err1 != nil || err2 != nil {
		return fmt.Errorf("no free port: %v %v", err1, err2)
	}
	args := append([]string{"serve", "--metrics-addr", metricsAddr, "--admin-addr", adminAddr}, s.cfg.Serve...)
	kg, err := proc.StartServer(ctx, tmp, "keygate", v.Env(), s.cfg.keygate, "--grpc-addr", args...)
	if err != nil {
		return err
	}
	s.kg = kg
	s.scr = scraper{metrics: "http://" + metricsAddr, admin: "http://" + adminAddr, client: &http.Client{}}
	return nil
}

// drive runs the load and the churn for the configured duration, taking
// samples at the marks; the last is taken before the load stops.
func (s *soak) drive(ctx context.Context) error {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	t0 := time.Now()
	s.res = newResults(t0, s.cfg.Bounds)
	l := &load{addr: s.kg.Addr, rate: s.cfg.Rate, conns: s.cfg.Conns, workers: s.cfg.Workers, pool: s.pool, res: s.res}
	var wg sync.WaitGroup
	var loadErr error
	wg.Add(2)
	go func() { defer wg.Done(); loadErr = l.run(lctx) }()
	go func() { defer wg.Done(); s.churn.loop(lctx, ctx, s.cfg.Churn) }()
	var err error
	for _, m := range marks(s.cfg.Duration, s.cfg.WarmUp) {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(time.Until(t0.Add(m.at))):
			err = s.take(ctx, t0, m.label)
		}
		if err != nil {
			break
		}
	}
	s.elapsed = time.Since(t0)
	stop()
	wg.Wait()
	s.churn.stats.Expired = s.pool.expired(time.Now())
	if err == nil {
		err = loadErr
	}
	return err
}

// mark is when (into the load) a sample is taken.
type mark struct {
	at    time.Duration
	label string
}

// marks: the end of warm-up, every minute, and the end.
func marks(d, warmUp time.Duration) []mark {
	ms := []mark{{warmUp, "warm-up"}, {d, "end"}}
	for m := time.Minute; m < d; m += time.Minute {
		if m != warmUp {
			ms = append(ms, mark{m, m.String()})
		}
	}
	slices.SortFunc(ms, func(a, b mark) int { return int(a.at - b.at) })
	return ms
}

// take samples keygate's resources and prints a progress line.
func (s *soak) take(ctx context.Context, t0 time.Time, label string) error {
	if s.kg.Exited() {
		return fmt.Errorf("keygate exited; see its log below")
	}
	sm, err := s.scr.sample(ctx)
	if err != nil {
		return fmt.Errorf("sample %s: %w", label, err)
	}
	sm.Label, sm.AtS = label, time.Since(t0).Seconds()
	if s.res != nil {
		sm.ClientSeen = s.res.count()
		if n := len(s.samples); n > 0 && sm.AtS > s.samples[n-1].AtS && s.samples[n-1].Label != "start" {
			prev := s.samples[n-1]
			sm.ClientRateS = float64(sm.ClientSeen-prev.ClientSeen) / (sm.AtS - prev.AtS)
		} else if sm.AtS > 0 {
			sm.ClientRateS = float64(sm.ClientSeen) / sm.AtS
		}
	}
	s.samples = append(s.samples, sm)
	wrong := 0
	if s.res != nil {
		s.res.mu.Lock()
		wrong = s.res.wrong
		s.res.mu.Unlock()
	}
	sz := s.pool.sizes()
	progress("%-8s %6.0fs: %7d Checks (%5.1f/s), %d wrong; heap %.1f MiB, goroutines %.0f, fds %.0f, RSS %.1f MiB; Vault key reads %.0f; keys active %d expiring %d retired %d",
		label, sm.AtS, sm.ClientSeen, sm.ClientRateS, wrong, mib(sm.HeapInuse), sm.Goroutines, sm.OpenFDs, mib(sm.RSS), sm.KeyReads, sz[0], sz[1], sz[2])
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kgsoak: "+format+"\n", args...)
}

// tail prints the end of keygate's log (key-shaped strings redacted).
func tail(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	fmt.Fprintf(os.Stderr, "kgsoak: last lines of keygate's log:\n%s\n",
		keyShape.ReplaceAllString(strings.Join(lines[max(0, len(lines)-20):], "\n"), "<key>"))
}

// logSummary counts keygate's log lines by level and message (its logs
// name key ids at most, never keys).
func logSummary(path string) map[string]int {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		var e struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Level != "" {
			out[e.Level+" "+e.Msg]++
		}
	}
	return out
}

func version(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func firstLine(b []byte, err error) string {
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}
