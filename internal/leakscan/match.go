package leakscan

import (
	"bytes"

	"github.com/keygate/keygate/policy"
)

// The shape of a key of any prefix: prefix (1–10 of [a-z0-9], starting
// with a letter), "_", and a base62 body of bodyLen characters (id, secret,
// checksum).
const maxPrefixLen = 10

// bodyLen is the length of a key's body, from policy's format.
var bodyLen = func() int {
	f, err := policy.NewFormat("k")
	if err != nil {
		panic(err) // a constant prefix: cannot fail
	}
	return f.Len() - len("k_")
}()

// overlap is how many bytes of a long line's previous piece the next piece
// repeats: enough for a whole key and the byte after it.
var overlap = maxPrefixLen + 1 + bodyLen + 1

var base62, lowerAlnum [256]bool

func init() {
	for c := '0'; c <= '9'; c++ {
		base62[c], lowerAlnum[c] = true, true
	}
	for c := 'a'; c <= 'z'; c++ {
		base62[c], lowerAlnum[c] = true, true
	}
	for c := 'A'; c <= 'Z'; c++ {
		base62[c] = true
	}
}

// match is one key found in a piece of text.
type match struct {
	start  int    // offset of the prefix's first byte
	rawKey string // the whole key
	prefix string // without "_"
	keyID  string
}

// matcher finds keys with a valid checksum in text. It keeps the formats
// of the prefixes it has seen; it is not safe for concurrent use.
type matcher struct {
	formats map[string]policy.Format
}

func newMatcher() *matcher { return &matcher{formats: map[string]policy.Format{}} }

// find calls fn for each key in b whose "_" is at an offset in [lo, hi).
// The caller guarantees that b holds maxPrefixLen bytes before lo (or lo
// is the start of the line) and the byte after any body ending before hi
// (or b ends the line).
func (m *matcher) find(b []byte, lo, hi int, fn func(match)) {
	for lo < hi {
		i := bytes.IndexByte(b[lo:hi], '_')
		if i < 0 {
			return
		}
		u := lo + i
		lo = u + 1
		if mt, ok := m.at(b, u); ok {
			fn(mt)
			lo = u + 1 + bodyLen // keys do not overlap
		}
	}
}

// at reports the key whose separator is b[u], if there is one: exactly
// bodyLen base62 bytes follow (then a non-base62 byte or the end of b), a
// prefix precedes, and the checksum over both is right. The prefix is the
// longest run of [a-z0-9] (at most maxPrefixLen) before u, or the longest
// suffix of it that starts with a letter and makes the checksum valid:
// the checksum covers the prefix, so only the true prefix passes.
func (m *matcher) at(b []byte, u int) (match, bool) {
	end := u + 1 + bodyLen
	if end > len(b) || (end < len(b) && base62[b[end]]) {
		return match{}, false
	}
	for _, c := range b[u+1 : end] {
		if !base62[c] {
			return match{}, false
		}
	}
	s := u
	for s > 0 && u-s < maxPrefixLen && lowerAlnum[b[s-1]] {
		s--
	}
	for p := s; p < u; p++ {
		if b[p] < 'a' || b[p] > 'z' {
			continue
		}
		if mt, ok := m.parse(b[p:u], b[p:end]); ok {
			mt.start = p
			return mt, true
		}
	}
	return match{}, false
}

// parse checks candidate with policy's parser for prefix.
func (m *matcher) parse(prefix, candidate []byte) (match, bool) {
	f, ok := m.formats[string(prefix)]
	if !ok {
		var err error
		if f, err = policy.NewFormat(string(prefix)); err != nil {
			return match{}, false
		}
		if len(m.formats) < 1024 { // bounded: prefixes come from the input
			m.formats[string(prefix)] = f
		}
	}
	rawKey := string(candidate)
	keyID, err := f.Parse(rawKey)
	if err != nil {
		return match{}, false
	}
	return match{rawKey: rawKey, prefix: f.Prefix(), keyID: keyID}, true
}

// Mask is the form of a key that reports show: its prefix, the first four
// and the last four characters of its body. It names the key to a person
// who holds it, and is far from enough to use it.
func Mask(rawKey string) string {
	p, body, ok := cutKey(rawKey)
	if !ok {
		return "<not a key>"
	}
	return p + "_" + body[:4] + "…" + body[len(body)-4:]
}

func cutKey(rawKey string) (prefix, body string, ok bool) {
	if len(rawKey) < bodyLen+2 {
		return "", "", false
	}
	i := len(rawKey) - bodyLen - 1
	if rawKey[i] != '_' {
		return "", "", false
	}
	return rawKey[:i], rawKey[i+1:], true
}
