package filestore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"
)

// racyWindow: a file whose mtime is this close to when it was read may be
// changed again without its size or mtime changing (coarse timestamps), so
// Watch keeps re-reading it until its mtime is older than this.
const racyWindow = 2 * time.Second

// watcher is Watch's memory between polls.
type watcher struct {
	seen    fileID            // file last read (zero: read on the next poll)
	racy    bool              // seen's mtime was within racyWindow of the read
	bad     [sha256.Size]byte // content last rejected, so it is logged once
	statErr string            // stat error last logged
}

// Watch polls the file every interval until ctx is done, then returns nil.
// When the file's size, mtime or inode change it reads the file; if the
// content (by hash) differs from what is served and loads, Lookup serves it
// from then on. A file that loads with invalid records is served (Lookup
// denies those keys) and its problems are logged. A file that fails at the
// document level is logged, once, and the last good snapshot stays in
// service. Watch runs in the caller's goroutine.
func (s *Store) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("watch key file: interval %v must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var w watcher
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.poll(&w)
		}
	}
}

func (s *Store) poll(w *watcher) {
	fi, err := os.Stat(s.path)
	if err != nil {
		if msg := err.Error(); msg != w.statErr {
			s.logger.Error("key file unreadable; serving the last good version", "path", s.path, "error", err)
			w.statErr = msg
		}
		w.seen = fileID{}
		return
	}
	w.statErr = ""
	if idOf(fi) == w.seen && !w.racy {
		return
	}
	select {
	case s.installing <- struct{}{}:
		defer func() { <-s.installing }()
	default:
		return // a write is installing its own snapshot; look again next time
	}
	c, err := readContent(s.path)
	if err != nil {
		s.logger.Error("key file unreadable; serving the last good version", "path", s.path, "error", err)
		w.seen, w.racy = idOf(fi), false // log once; try again when it changes
		return
	}
	w.seen, w.racy = c.id, time.Since(c.id.mtime) < racyWindow
	if c.sum == s.snap.Load().sum || c.sum == w.bad {
		return
	}
	st, err := parse(c.data)
	if err != nil {
		w.bad = c.sum
		s.logger.Error("key file invalid; serving the last good version", "path", s.path,
			"keys", len(s.snap.Load().st.records), "error", err)
		return
	}
	s.install(&snapshot{st: st, sum: c.sum})
	w.bad = [sha256.Size]byte{}
	s.logger.Info("key file reloaded", "path", s.path, "keys", len(st.records), "invalid", len(st.invalid))
	s.logProblems(st)
}
