package leakscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// gitArgs is the history as patches: every commit reachable from any ref,
// only the lines each one added (-U0), never through a repository's own
// diff drivers or text conversions (they run programs the repository
// names), paths unquoted where git allows.
var gitArgs = []string{"-c", "core.quotePath=false", "log", "-p", "--all", "-U0", "--no-color", "--no-ext-diff",
	"--no-textconv", "--format=commit %H"}

// History scans every commit of the repository at dir reachable from any
// ref, through `git log -p --all`: a key is reported at the commit, path
// and line that added it, so a key removed later is still found. Findings
// are in git log's order (newest commit first). git must be on $PATH.
func (s *Scanner) History(ctx context.Context, dir string) (*Result, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, gitArgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	res := &Result{}
	perr := s.patches(out, res)
	if perr != nil {
		_, _ = io.Copy(io.Discard, out) // let git finish
	}
	werr := cmd.Wait()
	res.Stats.Elapsed = time.Since(start)
	switch {
	case perr != nil:
		return nil, fmt.Errorf("read git log: %w", perr)
	case werr != nil:
		return nil, fmt.Errorf("git log in %s: %w: %s", dir, werr, strings.TrimSpace(stderr.String()))
	}
	return res, nil
}

// patch is where git log -p's output is: which commit, which file, which
// line of the new file comes next, and whether in a file's header or its
// hunks.
type patch struct {
	commit, path string
	next         int  // line number in the new file of the next added or context line
	inHunk       bool // after an "@@" line: content lines start with '+', '-', ' ' or '\'
	added        bool // the current line is an added line
}

// patches reads `git log -p` output and scans the lines it added.
func (s *Scanner) patches(r io.Reader, res *Result) error {
	ls := s.pool.Get().(*lineScanner)
	defer s.pool.Put(ls)
	ls.bytes = 0
	var p patch
	err := ls.lines(r, func(l line) error {
		if l.first {
			p.header(l.b, &res.Stats)
		}
		if !p.added {
			return nil
		}
		l.col0-- // the '+' is not part of the file: columns count from after it
		ls.keys(l, func(h hit) {
			res.Findings = append(res.Findings, newFinding(p.path, p.commit, hit{match: h.match, line: p.next - 1, column: h.column}))
		})
		return nil
	})
	res.Stats.Bytes = ls.bytes
	return err
}

// header reads the first piece of a line of git log -p output.
func (p *patch) header(b []byte, st *Stats) {
	p.added = false
	if p.inHunk && len(b) > 0 {
		switch b[0] {
		case '+':
			p.added = true
			p.next++
			return
		case ' ':
			p.next++
			return
		case '-', '\\':
			return
		}
	}
	text := strings.TrimRight(string(b[:min(len(b), 4096)]), "\r\n")
	switch {
	case strings.HasPrefix(text, "commit "):
		p.commit, p.path, p.inHunk = strings.TrimPrefix(text, "commit "), "", false
		st.Commits++
	case strings.HasPrefix(text, "diff --git "):
		p.path, p.inHunk = "", false
	case !p.inHunk && strings.HasPrefix(text, "+++ "):
		p.path = gitPath(strings.TrimPrefix(text, "+++ "))
	case strings.HasPrefix(text, "@@ "):
		p.inHunk, p.next = true, hunkStart(text)
	}
}

// gitPath is the path of a "+++ " header: "b/dir/file" or a C-quoted
// "\"b/dir/fi\\tle\"" (tab, newline and the like are quoted even with
// core.quotePath off). git ends a path with a space in it with a tab.
func gitPath(s string) string {
	s = strings.TrimSuffix(s, "\t")
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			s = u
		}
	}
	return strings.TrimPrefix(s, "b/")
}

// hunkStart is the new file's first line in "@@ -a,b +c,d @@".
func hunkStart(s string) int {
	_, rest, ok := strings.Cut(s, " +")
	if !ok {
		return 0
	}
	end := strings.IndexAny(rest, ", ")
	if end < 0 {
		return 0
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0
	}
	return n
}

// errNoGit says git is missing.
var errNoGit = errors.New("git is not on $PATH")

// CheckGit reports whether git can be run.
func CheckGit() error {
	if _, err := exec.LookPath("git"); err != nil {
		return errNoGit
	}
	return nil
}
