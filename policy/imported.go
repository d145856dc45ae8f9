package policy

import (
	"crypto/sha256"
	"errors"
)

// Imported keys are credentials issued before keygate (another gateway's API
// keys) that `keygate keys import` migrates without reissuing. They carry no
// id and no checksum, so keygate finds them by hash: the record of an
// imported key is stored under ImportedID(SHA-256 of the key), and its hash
// is that SHA-256. A server looks them up only with --imported-keys, and
// never for a credential with its own key prefix (a mistyped keygate key
// stays malformed_key, never a store read).
const (
	MinImportedKeyLen = 20
	MaxImportedKeyLen = 512
)

// ErrImportedKey is the error for a credential that cannot be an imported
// key.
var ErrImportedKey = errors.New("an imported key must be 20-512 visible ASCII characters without commas")

// ImportableKey reports whether rawKey could be an imported key: 20–512
// visible ASCII characters (no space: it arrives in a header) and no comma
// (Envoy joins repeated headers with one).
func ImportableKey(rawKey string) bool {
	if len(rawKey) < MinImportedKeyLen || len(rawKey) > MaxImportedKeyLen {
		return false
	}
	for i := 0; i < len(rawKey); i++ {
		if c := rawKey[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// ImportedKeyID returns the id an imported key is stored under, or
// ErrImportedKey. It hashes the key once, without allocating beyond the id.
func ImportedKeyID(rawKey string) (string, error) {
	if !ImportableKey(rawKey) {
		return "", ErrImportedKey
	}
	s := sha256Pool.Get().(*sha256State)
	sum := s.sum(rawKey)
	sha256Pool.Put(s)
	return ImportedID(sum), nil
}

// ImportedID is the key id of the imported key whose SHA-256 is sum: 12
// base62 characters, each a hash byte mod 62 (slightly biased: ~71 bits),
// so ids of imported keys look like any other. It is unsalted: see README
// "Imported keys" on what that means for low-entropy keys.
func ImportedID(sum [sha256.Size]byte) string {
	var id [IDLen]byte
	for i := range id {
		id[i] = base62[int(sum[i])%len(base62)]
	}
	return string(id[:])
}
