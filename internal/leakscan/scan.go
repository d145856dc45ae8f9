package leakscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Config configures a Scanner. The zero value is valid.
type Config struct {
	// MaxFileSize: larger files are skipped (counted in Stats). Default
	// DefaultMaxFileSize; stdin is never limited (it is streamed).
	MaxFileSize int64
	// IncludeGit scans .git directories too. Default false.
	IncludeGit bool
	// Workers is how many files are scanned at once. Default GOMAXPROCS.
	Workers int
}

// DefaultMaxFileSize is Config.MaxFileSize's default.
const DefaultMaxFileSize = 10 << 20

// binarySniff is how much of a file is looked at for a NUL byte, as git
// does, to call it binary.
const binarySniff = 8000

// Stats are what a scan read and skipped.
type Stats struct {
	Files          int64         `json:"files"`             // scanned
	Bytes          int64         `json:"bytes"`             // scanned
	SkippedBinary  int64         `json:"skipped_binary"`    // files with a NUL in their first 8000 bytes
	SkippedLarge   int64         `json:"skipped_large"`     // files over MaxFileSize
	SkippedSpecial int64         `json:"skipped_special"`   // symlinks, devices, pipes, sockets in a tree
	Commits        int64         `json:"commits,omitempty"` // history scans
	Elapsed        time.Duration `json:"elapsed_ns"`
}

// MBPerSecond is the scan's throughput in MB (10^6 bytes) per second.
func (s Stats) MBPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Bytes) / 1e6 / s.Elapsed.Seconds()
}

// Result is what a scan found.
type Result struct {
	Findings []Finding
	Stats    Stats
	// Errors are paths that could not be read; the rest was scanned.
	Errors []error
}

// Scanner scans files, trees, streams and git histories for keygate keys.
// It is safe for concurrent use.
type Scanner struct {
	cfg  Config
	pool sync.Pool // *lineScanner
}

// New returns a Scanner.
func New(cfg Config) *Scanner {
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = DefaultMaxFileSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	s := &Scanner{cfg: cfg}
	s.pool.New = func() any { return newLineScanner(newMatcher()) }
	return s
}

// Reader scans one stream, named name in findings, line by line.
func (s *Scanner) Reader(r io.Reader, name string) ([]Finding, int64, error) {
	ls := s.pool.Get().(*lineScanner)
	defer s.pool.Put(ls)
	ls.bytes = 0
	var out []Finding
	err := ls.scan(r, func(h hit) error {
		out = append(out, newFinding(name, "", h))
		return nil
	})
	return out, ls.bytes, err
}

// Paths scans each path: "-" is stdin, a directory is walked (not into
// .git unless Config.IncludeGit; symlinks inside it are not followed), a
// file is scanned unless binary or too large. Findings are sorted by path
// and line.
func (s *Scanner) Paths(ctx context.Context, paths []string, stdin io.Reader) (*Result, error) {
	start := time.Now()
	res := &Result{}
	files := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() {
			for path := range files {
				found, st, err := s.file(path)
				mu.Lock()
				res.add(found, st, err)
				mu.Unlock()
			}
		})
	}
	walkErr := s.feed(ctx, paths, stdin, files, func(st Stats, err error) {
		mu.Lock()
		res.add(nil, st, err)
		mu.Unlock()
	}, func(found []Finding, st Stats, err error) {
		mu.Lock()
		res.add(found, st, err)
		mu.Unlock()
	})
	close(files)
	wg.Wait()
	sortFindings(res.Findings)
	res.Stats.Elapsed = time.Since(start)
	return res, walkErr
}

func (r *Result) add(found []Finding, st Stats, err error) {
	r.Findings = append(r.Findings, found...)
	r.Stats.Files += st.Files
	r.Stats.Bytes += st.Bytes
	r.Stats.SkippedBinary += st.SkippedBinary
	r.Stats.SkippedLarge += st.SkippedLarge
	r.Stats.SkippedSpecial += st.SkippedSpecial
	if err != nil {
		r.Errors = append(r.Errors, err)
	}
}

// feed sends every file to scan to files, scans stdin itself, and reports
// skips and errors with note. It returns ctx's error if ctx ends.
func (s *Scanner) feed(ctx context.Context, paths []string, stdin io.Reader, files chan<- string,
	note func(Stats, error), scanned func([]Finding, Stats, error)) error {
	send := func(path string) error {
		select {
		case files <- path:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, root := range paths {
		if root == "-" {
			found, n, err := s.Reader(stdin, "-")
			if err != nil {
				err = fmt.Errorf("stdin: %w", err)
			}
			scanned(found, Stats{Files: 1, Bytes: n}, err)
			continue
		}
		fi, err := os.Stat(root) // a path named on the command line is followed
		if err != nil {
			note(Stats{}, err)
			continue
		}
		if !fi.IsDir() {
			if err := send(root); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				note(Stats{}, err)
				return nil // WalkDir skips an unreadable directory itself
			case d.IsDir() && d.Name() == ".git" && !s.cfg.IncludeGit:
				return filepath.SkipDir
			case d.IsDir():
				return nil
			case !d.Type().IsRegular(): // symlinks are never followed out of the tree
				note(Stats{SkippedSpecial: 1}, nil)
				return nil
			}
			return send(path)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// file scans one regular file.
func (s *Scanner) file(path string) ([]Finding, Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Stats{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, Stats{}, err
	case !fi.Mode().IsRegular():
		return nil, Stats{SkippedSpecial: 1}, nil
	case fi.Size() > s.cfg.MaxFileSize:
		return nil, Stats{SkippedLarge: 1}, nil
	}
	var head [binarySniff]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, Stats{}, err
	}
	if bytes.IndexByte(head[:n], 0) >= 0 {
		return nil, Stats{SkippedBinary: 1}, nil
	}
	// The limit holds for a file that grows while it is read.
	r := io.LimitReader(io.MultiReader(bytes.NewReader(head[:n]), f), s.cfg.MaxFileSize)
	found, read, err := s.Reader(r, path)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return found, Stats{Files: 1, Bytes: read}, err
}
