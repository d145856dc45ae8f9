package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Hash algorithms a Record's hash may use. Keys are high-entropy by
// construction, so a fast hash is safe and keeps the hot path cheap; a slow
// password hash (bcrypt, argon2) would invite work-factor DoS.
const (
	AlgSHA256     = "sha256"      // SHA-256 of the whole key
	AlgHMACSHA256 = "hmac-sha256" // HMAC-SHA256 of the whole key with a server-side pepper
)

// MinPepperLen is the minimum pepper length in bytes.
const MinPepperLen = 32

// Digest is a stored key hash: "sha256:<hex>" or "hmac-sha256:v<N>:<hex>".
// The whole key (prefix, id, secret, checksum) is hashed, which binds the
// record to its id: a record copied to another id never verifies.
type Digest struct {
	Alg           string
	PepperVersion int // hmac-sha256 only
	Sum           [sha256.Size]byte
}

// ParseDigest parses the text form of a Digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	alg, rest, ok := strings.Cut(s, ":")
	if !ok {
		return d, errors.New(`want "sha256:<hex>" or "hmac-sha256:v<N>:<hex>"`)
	}
	switch alg {
	case AlgSHA256:
	case AlgHMACSHA256:
		ver, sum, ok := strings.Cut(rest, ":")
		digits, hasV := strings.CutPrefix(ver, "v")
		n, err := strconv.Atoi(digits)
		if !ok || !hasV || err != nil || n < 1 || strconv.Itoa(n) != digits {
			return d, errors.New(`hmac-sha256 digest wants "hmac-sha256:v<N>:<hex>" with N >= 1`)
		}
		d.PepperVersion, rest = n, sum
	default:
		return d, fmt.Errorf("unknown hash algorithm %q (want %s or %s)", alg, AlgSHA256, AlgHMACSHA256)
	}
	if len(rest) != hex.EncodedLen(sha256.Size) {
		return d, fmt.Errorf("hash wants %d hex digits", hex.EncodedLen(sha256.Size))
	}
	if _, err := hex.Decode(d.Sum[:], []byte(rest)); err != nil {
		return d, errors.New("hash is not hex")
	}
	d.Alg = alg
	return d, nil
}

// String returns the text form stored in records.
func (d Digest) String() string {
	if d.Alg == AlgHMACSHA256 {
		return fmt.Sprintf("%s:v%d:%x", d.Alg, d.PepperVersion, d.Sum)
	}
	return fmt.Sprintf("%s:%x", d.Alg, d.Sum)
}

// Peppers are the versioned HMAC secrets. Current is used for new keys; every
// version still referenced by a record must stay in Versions.
type Peppers struct {
	Current  int
	Versions map[int][]byte
}

// Hasher hashes new keys with one algorithm and verifies keys hashed with any
// algorithm whose secrets it holds.
type Hasher struct {
	alg     string
	peppers Peppers
}

// NewHasher returns a Hasher that hashes new keys with alg. For
// hmac-sha256, peppers.Current must name a version of at least MinPepperLen
// bytes.
func NewHasher(alg string, peppers Peppers) (*Hasher, error) {
	var errs []error
	for v, p := range peppers.Versions {
		if v < 1 {
			errs = append(errs, fmt.Errorf("pepper version %d: must be >= 1", v))
		}
		if len(p) < MinPepperLen {
			errs = append(errs, fmt.Errorf("pepper version %d: %d bytes, need at least %d", v, len(p), MinPepperLen))
		}
	}
	switch alg {
	case AlgSHA256:
	case AlgHMACSHA256:
		if _, ok := peppers.Versions[peppers.Current]; !ok {
			errs = append(errs, fmt.Errorf("hash %s: current pepper version %d is not loaded", alg, peppers.Current))
		}
	default:
		errs = append(errs, fmt.Errorf("hash algorithm %q: want %s or %s", alg, AlgSHA256, AlgHMACSHA256))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	versions := make(map[int][]byte, len(peppers.Versions))
	for v, p := range peppers.Versions {
		versions[v] = append([]byte(nil), p...)
	}
	return &Hasher{alg: alg, peppers: Peppers{Current: peppers.Current, Versions: versions}}, nil
}

// Hash returns the digest to store for a new key.
func (h *Hasher) Hash(rawKey string) Digest {
	d := Digest{Alg: h.alg}
	if h.alg == AlgHMACSHA256 {
		d.PepperVersion = h.peppers.Current
	}
	d.Sum, _ = h.sum(rawKey, d)
	return d
}

// ErrUnknownPepper means a record was hashed with a pepper version this
// Hasher does not hold.
var ErrUnknownPepper = errors.New("record's pepper version is not loaded")

// Verify reports, in constant time, whether rawKey hashes to d.
func (h *Hasher) Verify(rawKey string, d Digest) (bool, error) {
	sum, err := h.sum(rawKey, d)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(sum[:], d.Sum[:]) == 1, nil
}

func (h *Hasher) sum(rawKey string, d Digest) (out [sha256.Size]byte, err error) {
	switch d.Alg {
	case AlgSHA256:
		s := sha256Pool.Get().(*sha256State)
		defer sha256Pool.Put(s)
		return s.sum(rawKey), nil
	case AlgHMACSHA256:
		pepper, ok := h.peppers.Versions[d.PepperVersion]
		if !ok {
			return out, ErrUnknownPepper
		}
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(rawKey))
		copy(out[:], m.Sum(nil)) // Sum(out[:0]) would move out to the heap on every path
		return out, nil
	}
	return out, fmt.Errorf("unknown hash algorithm %q", d.Alg)
}

// sha256State hashes without allocating: the hot path verifies a key on
// every request. The key is copied into buf, which is wiped after use so no
// pooled memory keeps a key (TestPooledKeyMemoryWiped).
type sha256State struct {
	buf [256]byte
}

var sha256Pool = sync.Pool{New: func() any { return new(sha256State) }}

func (s *sha256State) sum(rawKey string) [sha256.Size]byte {
	if len(rawKey) <= len(s.buf) {
		n := copy(s.buf[:], rawKey)
		sum := sha256.Sum256(s.buf[:n])
		clear(s.buf[:n])
		return sum
	}
	// Longer than any keygate key (an imported one): a digest of its own,
	// not pooled, since its block buffer keeps the key's last bytes.
	h := sha256.New()
	h.Write([]byte(rawKey))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
