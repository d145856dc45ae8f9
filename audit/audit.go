// Package audit writes one JSON line per Check decision, asynchronously:
// Check hands the decision to a bounded buffer and never waits; when the
// buffer is full the line is dropped and counted. Denies are always
// written; allows are sampled at Config.SampleAllows.
//
// A line never holds a key: decisions carry only the key id, the path's
// query string is dropped unless Config.KeepQuery, and anything key-shaped
// in the path, host or request id is redacted.
package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/extauthz"
	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

// Config configures a Logger. Start from DefaultConfig and set Out.
type Config struct {
	// Out receives the lines (the caller opens and closes it). Required.
	Out io.Writer
	// SampleAllows is the fraction of allow decisions written, 0 to 1 (0:
	// none). Denies are always written. Default 1: every allow.
	SampleAllows float64
	// Buffer is how many lines may wait to be written, at least 1.
	// Default 8192.
	Buffer int
	// KeepQuery keeps the path's query string. Default false: dropped.
	KeepQuery bool
	// DrainTimeout bounds writing what is buffered when Run ends.
	// Default 2s.
	DrainTimeout time.Duration
}

// DefaultConfig is the configuration without Out.
func DefaultConfig() Config {
	return Config{SampleAllows: 1, Buffer: 8192, DrainTimeout: 2 * time.Second}
}

// Validate reports every problem at once as *field.Error values ("out",
// "sample-allows", "buffer", "drain-timeout"). It does not change c.
func (c Config) Validate() error {
	var l field.List
	if c.Out == nil {
		l.Addf("out", "required")
	}
	if !(c.SampleAllows >= 0 && c.SampleAllows <= 1) {
		l.Addf("sample-allows", "%v is not between 0 and 1", c.SampleAllows)
	}
	if c.Buffer < 1 {
		l.Addf("buffer", "must be >= 1, got %d", c.Buffer)
	}
	if c.DrainTimeout <= 0 {
		l.Addf("drain-timeout", "must be > 0, got %s", c.DrainTimeout)
	}
	return l.Err()
}

// line is a decision waiting to be written, with the time it was made.
type line struct {
	at time.Time
	d  extauthz.Decision
}

// Logger writes audit lines. Log is safe for concurrent use; Run writes.
type Logger struct {
	cfg   Config
	lines chan line

	written, dropped atomic.Uint64
}

// New validates cfg and returns a Logger; start its Run.
func New(cfg Config) (*Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Logger{cfg: cfg, lines: make(chan line, cfg.Buffer)}, nil
}

// Log queues d for writing, never blocking: a full buffer drops the line
// (counted by Dropped).
func (l *Logger) Log(d extauthz.Decision) {
	if d.Reason == policy.Allowed && l.cfg.SampleAllows < 1 && rand.Float64() >= l.cfg.SampleAllows {
		return
	}
	select {
	case l.lines <- line{at: time.Now(), d: d}:
	default:
		l.dropped.Add(1)
	}
}

// Written counts the lines written since start.
func (l *Logger) Written() uint64 { return l.written.Load() }

// Dropped counts the lines dropped since start because the buffer was full.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Run writes queued lines until ctx ends, then what is still queued
// (within DrainTimeout). It flushes whenever the queue is empty.
func (l *Logger) Run(ctx context.Context) error {
	w := bufio.NewWriterSize(l.cfg.Out, 64<<10)
	buf := make([]byte, 0, 1024)
	var werr error
	write := func(ln line) {
		buf = l.appendLine(buf[:0], ln)
		if _, err := w.Write(buf); err != nil && werr == nil {
			werr = fmt.Errorf("audit log: %w", err)
		}
		l.written.Add(1)
	}
	flush := func() {
		if err := w.Flush(); err != nil && werr == nil {
			werr = fmt.Errorf("audit log: %w", err)
		}
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		select {
		case ln := <-l.lines:
			write(ln)
			queued := len(l.lines)
			for n := queued; n > 0; n-- {
				write(<-l.lines)
			}
			flush()
			if queued == 0 {
				continue // not busy: the next line is written as soon as it comes
			}
			// Busy (lines queued while this one was written): linger
			// before waiting on the queue again, so that lines logged
			// meanwhile wait in the buffer without waking this goroutine:
			// one wake-up and one write(2) per lingerTime, not one per
			// decision. Not when idle: a timer's wake-up in an idle
			// process costs more than the line.
			linger.Reset(lingerTime)
			select {
			case <-linger.C:
			case <-ctx.Done():
			}
		case <-ctx.Done():
			l.drain(write)
			flush()
			return werr
		}
	}
}

// lingerTime is how long Run lets lines gather after writing some: at most
// this much later than without it, well within Config.Buffer at any rate
// a replica serves (8192 lines are 400 ms at 20,000 decisions a second).
const lingerTime = 2 * time.Millisecond

// drain writes what is queued, for at most DrainTimeout.
func (l *Logger) drain(write func(line)) {
	deadline := time.NewTimer(l.cfg.DrainTimeout)
	defer deadline.Stop()
	for {
		select {
		case ln := <-l.lines:
			write(ln)
		case <-deadline.C:
			return
		default:
			return
		}
	}
}

// cacheNames are the "cache" field's values, by extauthz.Source.
var cacheNames = [...]string{
	extauthz.SourceNone: "none", extauthz.SourceHit: "hit", extauthz.SourceNegative: "negative_hit",
	extauthz.SourceMiss: "miss", extauthz.SourceStale: "stale",
}

// appendLine appends ln as one JSON object and a newline. Field order is
// fixed; see docs/observability.md, "Audit log", for the schema.
func (l *Logger) appendLine(b []byte, ln line) []byte {
	d := ln.d
	decision := "deny"
	if d.Reason == policy.Allowed {
		decision = "allow"
	}
	path := d.Path
	if !l.cfg.KeepQuery {
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
	}
	b = append(b, `{"time":"`...)
	b = ln.at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00") // digits and punctuation: nothing to escape
	b = append(b, '"')
	b = appendField(b, "request_id", redact(d.RequestID))
	b = appendField(b, "key_id", d.KeyID)
	b = appendField(b, "tenant", d.Tenant)
	b = appendField(b, "method", d.Method)
	b = appendField(b, "host", redact(d.Host))
	b = appendField(b, "path", redact(path))
	b = appendField(b, "source_ip", d.SourceIP)
	b = appendField(b, "decision", decision)
	b = appendField(b, "reason", d.Reason.String())
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(d.Reason.HTTPStatus()), 10)
	cache := "none"
	if int(d.Source) < len(cacheNames) {
		cache = cacheNames[d.Source]
	}
	b = appendField(b, "cache", cache)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, d.Latency.Microseconds(), 10)
	return append(b, '}', '\n')
}

// redact removes anything key-shaped (cheaply skipping strings that cannot
// hold a key).
func redact(s string) string {
	if len(s) < 41 || strings.IndexByte(s, '_') < 0 {
		return s
	}
	return policy.Redact(s)
}
