package events

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// Config configures a Runner. Start from DefaultConfig.
type Config struct {
	// Webhooks receive every event. At least one.
	Webhooks []Webhook
	// Holder names this replica in the lease. Default: host name, process
	// id and a random suffix (set by New).
	Holder string
	// LeaseTTL is how long the lease lasts unless renewed (every LeaseTTL/3).
	// A stopped sender is replaced within it. Default 30s.
	LeaseTTL time.Duration
	// JournalPoll is how often the change journal (or, without one, the
	// file store) is read. Default 1s.
	JournalPoll time.Duration
	// ListInterval is how often the key ids are listed to find new keys
	// (stores with a journal: new keys are not journaled). Default 30s.
	ListInterval time.Duration
	// ScanInterval is how often every key is read for time-based events.
	// Default 10m.
	ScanInterval time.Duration
	// ExpiringDays are the days before expiry at which key.expiring is
	// sent. Default 7, 1. Empty: no key.expiring.
	ExpiringDays []int
	// UnusedFor is the idle time after which key.unused is sent (stores
	// that record key use only). 0: off. Default 90 days.
	UnusedFor time.Duration
	// AutoDisable revokes keys (reason "unused") still unused AutoDisableGrace
	// after their key.unused event. Default false.
	AutoDisable      bool
	AutoDisableGrace time.Duration // default 7 days
	// Delivery, per webhook.
	QueueSize   int           // queued events; more are dead-lettered. Default 10000.
	Timeout     time.Duration // of one attempt. Default 10s.
	MaxAttempts int           // attempts per event, the first included. Default 8.
	Backoff     time.Duration // wait after the first failed attempt, doubling. Default 1s.
	MaxBackoff  time.Duration // longest wait between attempts. Default 5m.
	// Log receives the runner's logs. Default: discarded.
	Log *slog.Logger
	// Metrics, if set, counts deliveries. Default nil.
	Metrics *Metrics
	// Now is the clock of the time-based events and the lease. Default
	// time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults (no webhooks).
func DefaultConfig() Config {
	const day = 24 * time.Hour
	return Config{LeaseTTL: 30 * time.Second, JournalPoll: time.Second, ListInterval: 30 * time.Second,
		ScanInterval: 10 * time.Minute, ExpiringDays: []int{7, 1}, UnusedFor: 90 * day, AutoDisableGrace: 7 * day,
		QueueSize: 10000, Timeout: 10 * time.Second, MaxAttempts: 8, Backoff: time.Second, MaxBackoff: 5 * time.Minute}
}

// Validate reports every problem at once, each naming its field as the
// command's flag ("lease-ttl").
func (c Config) Validate() error {
	var l field.List
	if len(c.Webhooks) == 0 {
		l.Addf("webhook", "at least one is required")
	}
	for i, w := range c.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.Addf(fmt.Sprintf("webhook[%d]", i), "want an http:// or https:// URL")
		}
		if w.Secret.key == nil {
			l.Addf(fmt.Sprintf("webhook-secret-file[%d]", i), "missing")
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lease-ttl", c.LeaseTTL}, {"journal-poll", c.JournalPoll}, {"list-interval", c.ListInterval},
		{"scan-interval", c.ScanInterval}, {"timeout", c.Timeout}, {"retry-backoff", c.Backoff}, {"retry-max-backoff", c.MaxBackoff}} {
		if d.v <= 0 {
			l.Addf(d.name, "must be > 0, got %s", d.v)
		}
	}
	if c.MaxBackoff < c.Backoff {
		l.Addf("retry-max-backoff", "must be >= --retry-backoff")
	}
	if c.LeaseTTL > 0 && c.LeaseTTL < 300*time.Millisecond {
		l.Addf("lease-ttl", "must be >= 300ms (it is renewed every third of it)")
	}
	for _, d := range c.ExpiringDays {
		if d < 1 {
			l.Addf("expiring-days", "each must be >= 1, got %d", d)
		}
	}
	if c.UnusedFor < 0 {
		l.Addf("unused-for", "must be >= 0")
	}
	if c.AutoDisable && c.UnusedFor == 0 {
		l.Addf("auto-disable-unused", "needs --unused-for > 0")
	}
	if c.AutoDisableGrace < 0 {
		l.Addf("auto-disable-grace", "must be >= 0")
	}
	if c.QueueSize < 1 {
		l.Addf("queue-size", "must be >= 1")
	}
	if c.MaxAttempts < 1 {
		l.Addf("max-attempts", "must be >= 1")
	}
	return l.Err()
}

// expiringDays are the thresholds, most imminent first.
func (c Config) expiringDays() []int {
	d := slices.Clone(c.ExpiringDays)
	slices.Sort(d)
	return slices.Compact(d)
}

// errNoUsage: key.unused needs a store that records key use.
var errNoUsage = errors.New("this store does not record when keys are used: key.unused and auto-disable need Vault (keygate serve --usage-interval)")
