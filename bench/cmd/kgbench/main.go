// Command kgbench is keygate's side-by-side benchmark: it loads keygate and
// the floor (bench/floor) with the same CheckRequests, interleaved, and
// reports throughput, latency percentiles, server CPU per Check and memory,
// plus cold misses and Vault reads against a real Vault dev server. Run it
// with `make bench` (scripts/bench.sh); BENCHMARKS.md describes the knobs.
//
// Keys are never printed: they live only in memory, in request files and in
// the floor's key file under a temp dir that is removed at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the benchmark's knobs (environment, see BENCHMARKS.md) and the
// binaries it runs (flags, set by scripts/bench.sh).
type config struct {
	Duration     time.Duration `json:"duration"`      // per run (ghz -x)
	Count        int           `json:"count"`         // per run (ghz -n)
	Warmup       time.Duration `json:"warmup"`        // per server before each configuration, not reported
	Reps         int           `json:"reps"`          // A B pairs per configuration
	Concurrency  []int         `json:"concurrency"`   // ghz and cold-miss concurrencies
	Connections  int           `json:"connections"`   // gRPC connections per load generator
	Rate         int           `json:"rate"`          // fixed-rate run, Check/s (0 skips it)
	RateDuration time.Duration `json:"rate_duration"` // per fixed-rate run
	RateConc     int           `json:"rate_concurrency"`
	UseGhz       bool          `json:"ghz"`                // ghz scenarios and the fixed-rate run
	Pinned       bool          `json:"pinned"`             // cached-allow, server and load generator on their own CPUs
	Vault        bool          `json:"vault"`              // cold misses and Vault reads
	ColdKeys     int           `json:"cold_keys"`          // unique keys in Vault
	NewKeyChecks int           `json:"new_key_checks"`     // concurrent Checks of one new key
	Malformed    int           `json:"malformed_keys"`     // distinct malformed keys sent
	LegacyHdrs   bool          `json:"legacy_headers_map"` // headers map instead of header_map
	Network      string        `json:"network"`

	keygate, floor, ghz, vault, out string
}

// MarshalJSON writes the durations as strings ("5s").
func (c *config) MarshalJSON() ([]byte, error) {
	type plain config
	return json.Marshal(struct {
		*plain
		Duration     string `json:"duration"`
		Warmup       string `json:"warmup"`
		RateDuration string `json:"rate_duration"`
	}{(*plain)(c), c.Duration.String(), c.Warmup.String(), c.RateDuration.String()})
}

func loadConfig() (*config, error) {
	c := &config{Network: envStr("BENCH_NETWORK", "host loopback (not isolated)")}
	flag.StringVar(&c.keygate, "keygate", "bin/keygate", "keygate binary")
	flag.StringVar(&c.floor, "floor", "bin/kgbench-floor", "floor binary")
	flag.StringVar(&c.ghz, "ghz", ".tools/ghz", "ghz binary")
	flag.StringVar(&c.vault, "vault", ".tools/vault", "Vault server binary")
	flag.StringVar(&c.out, "out", envStr("BENCH_OUT", ".run/bench"), "output directory")
	flag.Parse()
	var errs []string
	get := func(name string, set func(string) error, def string) {
		if err := set(envStr(name, def)); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	}
	get("BENCH_DURATION", durVar(&c.Duration), "5s")
	get("BENCH_COUNT", intVar(&c.Count), "150000")
	get("BENCH_WARMUP", durVar(&c.Warmup), "1s")
	get("BENCH_REPS", intVar(&c.Reps), "2")
	get("BENCH_CONCURRENCY", intsVar(&c.Concurrency), "16,64")
	get("BENCH_CONNECTIONS", intVar(&c.Connections), "1")
	get("BENCH_RATE", intVar(&c.Rate), "1000")
	get("BENCH_RATE_DURATION", durVar(&c.RateDuration), "5s")
	get("BENCH_RATE_CONCURRENCY", intVar(&c.RateConc), "16")
	get("BENCH_GHZ", boolVar(&c.UseGhz), "1")
	get("BENCH_PINNED", boolVar(&c.Pinned), "1")
	get("BENCH_VAULT", boolVar(&c.Vault), "1")
	get("BENCH_COLD_KEYS", intVar(&c.ColdKeys), "2000")
	get("BENCH_NEW_KEY_CHECKS", intVar(&c.NewKeyChecks), "1000")
	get("BENCH_MALFORMED", intVar(&c.Malformed), "100000")
	get("BENCH_LEGACY_HEADERS", boolVar(&c.LegacyHdrs), "0")
	if len(errs) > 0 {
		return nil, fmt.Errorf("bad settings:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

func envStr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func durVar(p *time.Duration) func(string) error {
	return func(s string) (err error) {
		if *p, err = time.ParseDuration(s); err == nil && *p <= 0 {
			err = fmt.Errorf("must be > 0")
		}
		return err
	}
}

func intVar(p *int) func(string) error {
	return func(s string) (err error) {
		if *p, err = strconv.Atoi(s); err == nil && *p < 0 {
			err = fmt.Errorf("must be >= 0")
		}
		return err
	}
}

func intsVar(p *[]int) func(string) error {
	return func(s string) error {
		*p = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("want a comma-separated list of positive integers, got %q", s)
			}
			*p = append(*p, n)
		}
		return nil
	}
}

func boolVar(p *bool) func(string) error {
	return func(s string) (err error) { *p, err = strconv.ParseBool(s); return err }
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kgbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute) // hard bound on the whole benchmark
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kgbench:", err)
		os.Exit(1)
	}
}
