package leakscan

import (
	"bufio"
	"errors"
	"io"
)

// readBufSize is the read buffer of a stream: lines up to this long are
// scanned in place; longer ones in pieces of this size.
const readBufSize = 64 << 10

// hit is a key found in a stream, at a 1-based line and column.
type hit struct {
	match
	line, column int
}

// lineScanner scans a stream line by line in constant memory: a line
// longer than its buffer is scanned in pieces that overlap by a key's
// length, so a key across two pieces is found once.
type lineScanner struct {
	m     *matcher
	br    *bufio.Reader
	carry []byte // a long line's current piece: the previous one's tail, then new bytes
	bytes int64  // read so far
}

func newLineScanner(m *matcher) *lineScanner {
	return &lineScanner{m: m, br: bufio.NewReaderSize(nil, readBufSize), carry: make([]byte, 0, readBufSize+overlap)}
}

// line is one line, or one piece of a long line.
type line struct {
	b           []byte
	num         int  // 1-based line number
	col0        int  // column of b[0], 0-based
	repeated    int  // how many bytes at the start of b the previous piece ended with
	first, last bool // b starts the line; b ends it
}

// lines reads r and calls fn for each line, or each piece of a long line
// (pieces after the first repeat the previous one's last overlap bytes).
// b is valid only during the call.
func (s *lineScanner) lines(r io.Reader, fn func(line) error) error {
	s.br.Reset(r)
	defer s.br.Reset(nil)
	l := line{num: 1, first: true}
	for {
		frag, err := s.br.ReadSlice('\n')
		s.bytes += int64(len(frag))
		full := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !full && !errors.Is(err, io.EOF) {
			return err
		}
		if len(frag) > 0 {
			l.b = frag
			if !l.first {
				s.carry = append(s.carry, frag...)
				l.b = s.carry
			}
			l.last = !full
			if ferr := fn(l); ferr != nil {
				return ferr
			}
			if full {
				tail := l.b[len(l.b)-min(overlap, len(l.b)):]
				l.col0 += len(l.b) - len(tail)
				l.repeated = len(tail)
				s.carry = append(s.carry[:0], tail...) // copy: tail may alias carry
				l.first = false
			} else {
				l = line{num: l.num + 1, first: true}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// scan reads r and calls fn for each key in it.
func (s *lineScanner) scan(r io.Reader, fn func(hit) error) error {
	var ferr error
	return s.lines(r, func(l line) error {
		s.keys(l, func(h hit) {
			if ferr == nil {
				ferr = fn(h)
			}
		})
		return ferr
	})
}

// keys finds the keys of one line or piece that this piece decides: a
// key whose body reaches the end of a piece that does not end the line is
// left to the next piece, which repeats it.
func (s *lineScanner) keys(l line, fn func(hit)) {
	if len(l.b) < bodyLen+2 {
		return
	}
	lo, hi := 0, len(l.b)
	if !l.first {
		// The previous piece decided separators before its last bodyLen+1
		// bytes; maxPrefixLen bytes before lo are repeated, for the prefix.
		lo = max(0, l.repeated-bodyLen-1)
	}
	if !l.last {
		hi = len(l.b) - bodyLen - 1
	}
	s.m.find(l.b, lo, hi, func(mt match) {
		fn(hit{match: mt, line: l.num, column: l.col0 + mt.start + 1})
	})
}
