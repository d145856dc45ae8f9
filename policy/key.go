package policy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"
)

// A key looks like GitHub's tokens: one regex-checkable token.
//
//	kg_ 4VvXJ3tq9aBz  ...32 base62 secret chars...  0zXk3d
//	    └ id (12) ┘    └────── secret (32) ──────┘  └crc(6)┘
//
// The id is public (it names the Vault path and appears in logs); the secret
// carries 32*log2(62) ≈ 190 bits from crypto/rand; the checksum is the CRC32
// (IEEE) of everything before it, base62, so typos and garbage are rejected
// without a cache or Vault lookup.
const (
	IDLen       = 12
	SecretLen   = 32
	checksumLen = 6
	bodyLen     = IDLen + SecretLen + checksumLen

	// DefaultPrefix is the key prefix used when none is configured.
	DefaultPrefix = "kg"

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Parse errors. They never contain the key.
var (
	ErrKeyPrefix   = errors.New("key has the wrong prefix")
	ErrKeyLength   = errors.New("key has the wrong length")
	ErrKeyAlphabet = errors.New("key has characters outside base62")
	ErrKeyChecksum = errors.New("key checksum does not match")
)

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

// Format is a key format with a given prefix. The zero value is not usable;
// build one with NewFormat.
type Format struct {
	prefix string // including the trailing underscore
}

// NewFormat returns the format for prefix: 1–10 characters, lower-case
// letters and digits, starting with a letter.
func NewFormat(prefix string) (Format, error) {
	if !prefixRE.MatchString(prefix) {
		return Format{}, fmt.Errorf("key prefix %q: want 1-10 of [a-z0-9] starting with a letter", prefix)
	}
	return Format{prefix: prefix + "_"}, nil
}

// Prefix returns the configured prefix without the separator.
func (f Format) Prefix() string { return strings.TrimSuffix(f.prefix, "_") }

// HasPrefix reports whether s starts with this format's prefix and its
// separator ("kg_"): such a credential is a keygate key or malformed, never
// an imported key.
func (f Format) HasPrefix(s string) bool { return strings.HasPrefix(s, f.prefix) }

// Len is the length of every key in this format.
func (f Format) Len() int { return len(f.prefix) + bodyLen }

// Parse checks prefix, length, alphabet and checksum and returns the public
// key id. It does not allocate: the id is a substring of rawKey.
func (f Format) Parse(rawKey string) (keyID string, err error) {
	if len(rawKey) != f.Len() {
		return "", ErrKeyLength
	}
	if rawKey[:len(f.prefix)] != f.prefix {
		return "", ErrKeyPrefix
	}
	body := rawKey[len(f.prefix):]
	for i := 0; i < len(body); i++ {
		if base62Index(body[i]) < 0 {
			return "", ErrKeyAlphabet
		}
	}
	signed := rawKey[:len(rawKey)-checksumLen]
	if !checksumMatches(crc32String(signed), body[IDLen+SecretLen:]) {
		return "", ErrKeyChecksum
	}
	return body[:IDLen], nil
}

// ValidID reports whether id has the shape of a key id (12 base62 chars). Use
// it before putting a user-supplied id into a path.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if base62Index(id[i]) < 0 {
			return false
		}
	}
	return true
}

// Generate returns a new random key and its id.
func (f Format) Generate() (rawKey, keyID string, err error) {
	buf := make([]byte, 0, f.Len())
	buf = append(buf, f.prefix...)
	if buf, err = appendRandomBase62(buf, IDLen+SecretLen); err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	buf = appendChecksum(buf, crc32.ChecksumIEEE(buf))
	rawKey = string(buf)
	return rawKey, rawKey[len(f.prefix) : len(f.prefix)+IDLen], nil
}

// appendRandomBase62 appends n uniformly random base62 characters, using
// rejection sampling so that no character is more likely than another.
func appendRandomBase62(dst []byte, n int) ([]byte, error) {
	var pool [64]byte
	for n > 0 {
		if _, err := rand.Read(pool[:]); err != nil {
			return nil, err
		}
		for _, b := range pool {
			if b >= 62*4 { // 248..255 would bias the result
				continue
			}
			dst = append(dst, base62[b%62])
			if n--; n == 0 {
				break
			}
		}
	}
	return dst, nil
}

func appendChecksum(dst []byte, sum uint32) []byte {
	var out [checksumLen]byte
	v := uint64(sum)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return append(dst, out[:]...)
}

// crc32String is crc32.ChecksumIEEE for a string, without copying it to the
// heap (the key must not be copied around, and Parse must not allocate).
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

func checksumMatches(sum uint32, enc string) bool {
	var v uint64
	for i := 0; i < len(enc); i++ {
		v = v*62 + uint64(base62Index(enc[i]))
	}
	return v == uint64(sum)
}

func base62Index(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}
