// Package console is keygate's web console for security teams: sign in
// with your own Vault identity, see every key at a glance, find the risky
// ones, issue, update, rotate, revoke, delete and import keys.
//
// The console holds no privilege. Every read and write runs with the
// signed-in person's own Vault token (through keyadmin, the same lifecycle
// rules and messages as `keygate keys`), so Vault's policies decide who may
// do what and Vault's audit device records who did it. Pages are
// html/template, styles and the little script are embedded files; the
// Content-Security-Policy allows no inline script or style.
package console

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// Config configures a Console. Start from DefaultConfig.
type Config struct {
	// Secure says the console is served over TLS: cookies get Secure and
	// the __Host- prefix. Default false (main sets it with --tls-cert).
	Secure bool
	// SessionMax bounds a session, however long its Vault token lives.
	// Default 8h.
	SessionMax time.Duration
	// IdleTimeout ends a session unused for this long. Default 30m.
	IdleTimeout time.Duration
	// SignInRate and SignInBurst limit sign-in attempts per client address
	// (per minute). Default 10 a minute, burst 5.
	SignInRate  float64
	SignInBurst int
	// PageSize is how many keys a page lists. Default 50.
	PageSize int
	// JournalEvery is the shortest interval between two reads of the
	// change journal for the key index (a page view triggers one). Default 1s.
	JournalEvery time.Duration
	// ListEvery is the shortest interval between two listings of the key
	// ids (keys created by others are not journaled). Default 15s.
	ListEvery time.Duration
	// ReloadEvery re-reads every key (last use, records changed outside
	// keygate). Default 10m.
	ReloadEvery time.Duration
	// UnusedDays and ExpiringDays are the overview's buckets. Defaults
	// [30 90] and [7 30].
	UnusedDays, ExpiringDays [2]int
	// PrometheusURL, if set, is the Prometheus that scrapes keygate serve:
	// pages then chart request rates (see usage.go). Default "".
	PrometheusURL string
	// Log receives one line per action, with the Vault identity. Required.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig is the console's configuration when given no flags.
func DefaultConfig() Config {
	return Config{
		SessionMax:   8 * time.Hour,
		IdleTimeout:  30 * time.Minute,
		SignInRate:   10,
		SignInBurst:  5,
		PageSize:     50,
		JournalEvery: time.Second,
		ListEvery:    15 * time.Second,
		ReloadEvery:  10 * time.Minute,
		UnusedDays:   [2]int{30, 90},
		ExpiringDays: [2]int{7, 30},
		Now:          time.Now,
	}
}

// Validate reports every problem at once, naming fields as the console
// command's flags.
func (c Config) Validate() error {
	var l field.List
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"session-max", c.SessionMax}, {"idle-timeout", c.IdleTimeout}, {"journal-every", c.JournalEvery},
		{"list-every", c.ListEvery}, {"reload-every", c.ReloadEvery}} {
		if d.v <= 0 {
			l.Addf(d.name, "must be > 0, got %s", d.v)
		}
	}
	if c.SignInRate <= 0 || c.SignInBurst < 1 {
		l.Add("must be > 0", "sign-in-rate", "sign-in-burst")
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		l.Addf("page-size", "must be 1-1000, got %d", c.PageSize)
	}
	for _, b := range [][2]int{c.UnusedDays, c.ExpiringDays} {
		if b[0] < 1 || b[1] <= b[0] {
			l.Add("want two increasing day counts > 0", "unused-days", "expiring-days")
			break
		}
	}
	if c.PrometheusURL != "" {
		if u, err := url.Parse(c.PrometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" {
			l.Addf("prometheus-url", "%q: want an http(s) URL without user info or query, e.g. http://prometheus:9090", c.PrometheusURL)
		}
	}
	if c.Log == nil {
		l.Addf("log", "required")
	}
	if c.Now == nil {
		l.Addf("now", "required")
	}
	return l.Err()
}
