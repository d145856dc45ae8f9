// Command kgsoak is keygate's soak test (`make soak`, scripts/soak.sh): it
// runs `keygate serve` on a real Vault dev server for SOAK_DURATION at a
// steady SOAK_RATE of gRPC Checks while the key CLI creates, revokes,
// expires and rotates keys, judges every decision against an oracle built
// from what was issued and revoked and when, and reports keygate's heap,
// goroutines, open files and RSS from start to end. It exits 1 on any wrong
// decision, gRPC error, failed CLI command or resource growth past the
// tolerances; BENCHMARKS.md describes it and records a run.
//
// Keys are never printed or written: they live in memory only, and the
// report names key ids.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxDuration bounds SOAK_DURATION: a soak is long, never unbounded.
const maxDuration = 2 * time.Hour

// config is the soak's knobs (environment) and binaries (flags).
type config struct {
	Duration time.Duration     `json:"-"`
	Rate     int               `json:"rate"`                // Check/s, all connections together
	Conns    int               `json:"connections"`         // gRPC connections
	Workers  int               `json:"workers_per_conn"`    // concurrent Checks per connection
	Keys     int               `json:"initial_keys"`        // active keys created before the load
	Churn    time.Duration     `json:"-"`                   // between churn ticks
	Network  string            `json:"network"`             // set by scripts/soak.sh
	Serve    []string          `json:"keygate_serve_flags"` // besides the addresses
	Bounds   bounds            `json:"-"`                   // the oracle's tolerances
	WarmUp   time.Duration     `json:"-"`                   // resources are compared with the end of it
	Settings map[string]string `json:"settings"`            // durations, as strings

	keygate, vault, out string
}

func loadConfig() (*config, error) {
	c := &config{Workers: 2, Network: envStr("SOAK_NETWORK", "host loopback (not isolated)"),
		Bounds: bounds{propagation: 3 * time.Second, clock: 500 * time.Millisecond}}
	flag.StringVar(&c.keygate, "keygate", "bin/keygate", "keygate binary")
	flag.StringVar(&c.vault, "vault", ".tools/vault", "Vault server binary")
	flag.StringVar(&c.out, "out", envStr("SOAK_OUT", ".run/soak"), "output directory")
	flag.Parse()
	var err error
	if c.Duration, err = time.ParseDuration(envStr("SOAK_DURATION", "10m")); err != nil || c.Duration < 20*time.Second || c.Duration > maxDuration {
		return nil, fmt.Errorf("SOAK_DURATION: want 20s to %v, got %q", maxDuration, os.Getenv("SOAK_DURATION"))
	}
	if c.Churn, err = time.ParseDuration(envStr("SOAK_CHURN", "2s")); err != nil || c.Churn < 500*time.Millisecond {
		return nil, fmt.Errorf("SOAK_CHURN: want a duration >= 500ms, got %q", os.Getenv("SOAK_CHURN"))
	}
	for _, v := range []struct {
		name, def string
		p         *int
		lo, hi    int
	}{{"SOAK_RATE", "300", &c.Rate, 10, 5000}, {"SOAK_CLIENTS", "4", &c.Conns, 1, 64}, {"SOAK_KEYS", "30", &c.Keys, 4, 1000}} {
		n, err := strconv.Atoi(envStr(v.name, v.def))
		if err != nil || n < v.lo || n > v.hi {
			return nil, fmt.Errorf("%s: want %d to %d, got %q", v.name, v.lo, v.hi, os.Getenv(v.name))
		}
		*v.p = n
	}
	c.WarmUp = min(max(c.Duration/10, 10*time.Second), time.Minute)
	c.Serve = []string{"--store", "vault", "--found-ttl", "30s", "--journal-poll", "1s", "--audit-log", "off", "--log-level", "warn"}
	// Extra serve flags (the last of a repeated flag wins), e.g. to check
	// the soak itself: SOAK_SERVE_ARGS="--journal-poll 0" must fail it.
	c.Serve = append(c.Serve, strings.Fields(os.Getenv("SOAK_SERVE_ARGS"))...)
	c.Settings = map[string]string{"duration": c.Duration.String(), "churn_interval": c.Churn.String(),
		"warm_up": c.WarmUp.String(), "propagation_bound": c.Bounds.propagation.String(), "clock_margin": c.Bounds.clock.String(),
		"expiring_life": expiringLife.String(), "rotate_grace": rotateGrace.String(), "retention": retention.String()}
	return c, nil
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kgsoak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+10*time.Minute) // hard bound on the whole soak
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kgsoak:", err)
		os.Exit(1)
	}
	if problems := rep.problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "kgsoak: FAIL:", p)
		}
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "kgsoak: PASS")
}
