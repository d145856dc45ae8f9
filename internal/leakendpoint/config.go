package leakendpoint

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures an Endpoint. Start from DefaultConfig.
type Config struct {
	// MaxBody is the largest request body read, in bytes; a larger one is
	// refused with 413. Default 1 MiB.
	MaxBody int64
	// MaxTokens is the most tokens one report may hold; more is refused
	// with 413. Default 1000.
	MaxTokens int
	// Revoke revokes every active key reported, with reason "leaked".
	// Default false: the endpoint only answers the tokens' status.
	Revoke bool
	// ReplayWindow is how long a verified report is remembered, so that
	// the same body is refused (409) if it comes again. Default 24h.
	ReplayWindow time.Duration
	// ReplayEntries bounds the memory of seen reports (32 bytes and a time
	// each); the oldest are forgotten first. Default 100000.
	ReplayEntries int
	// Timeout bounds the store reads and revocations of one report
	// (GitHub waits 30 s for partners that send feedback). Default 20s.
	Timeout time.Duration
	// Log receives one line per report and per token (no raw token).
	// Default: discard.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxBody       = 1 << 20
	DefaultMaxTokens     = 1000
	DefaultReplayWindow  = 24 * time.Hour
	DefaultReplayEntries = 100_000
	DefaultTimeout       = 20 * time.Second
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBody: DefaultMaxBody, MaxTokens: DefaultMaxTokens, ReplayWindow: DefaultReplayWindow,
		ReplayEntries: DefaultReplayEntries, Timeout: DefaultTimeout}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBody <= 0 {
		errs = append(errs, fmt.Errorf("max-body: %d: must be > 0", c.MaxBody))
	}
	if c.MaxTokens <= 0 {
		errs = append(errs, fmt.Errorf("max-tokens: %d: must be > 0", c.MaxTokens))
	}
	if c.ReplayWindow <= 0 {
		errs = append(errs, fmt.Errorf("replay-window: %s: must be > 0", c.ReplayWindow))
	}
	if c.ReplayEntries <= 0 {
		errs = append(errs, fmt.Errorf("replay-entries: %d: must be > 0", c.ReplayEntries))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %s: must be > 0", c.Timeout))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
