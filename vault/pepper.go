package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/keygate/keygate/policy"
)

// pepperLen is the size of a pepper made by InitPepper.
const pepperLen = 32

// pepperEntry is the KV data at <mount>/data/<base>/pepper:
//
//	{"current": 2, "versions": {"1": "<base64>", "2": "<base64>"}}
//
// Every version still used by a record's hash must stay in versions.
type pepperEntry struct {
	Current  int               `json:"current"`
	Versions map[string]string `json:"versions"`
}

func (s *Store) pepperPath() string { return s.mount + "/data/" + s.base + "/pepper" }

// Peppers reads the HMAC peppers. No pepper entry is zero Peppers and no
// error (keys hashed with plain sha256 need none); an entry whose latest
// version is deleted, or that is malformed, is an error. Errors never
// contain pepper bytes.
func (s *Store) Peppers(ctx context.Context) (policy.Peppers, error) {
	p, _, err := s.readPeppers(ctx, "peppers")
	return p, err
}

// InitPepper adds a new random 32-byte pepper version and makes it current,
// keeping the older versions. It writes with check-and-set against the
// entry it read, so concurrent rotations cannot lose a version: the loser
// gets policy.ErrConflict. It returns the new pepper version.
func (s *Store) InitPepper(ctx context.Context) (version int, err error) {
	const op = "init pepper"
	p, kvVersion, err := s.readPeppers(ctx, op)
	if err != nil {
		return 0, err
	}
	next := 1
	versions := make(map[string]string, len(p.Versions)+1)
	for v, pepper := range p.Versions {
		versions[strconv.Itoa(v)] = base64.StdEncoding.EncodeToString(pepper)
		next = max(next, v+1)
	}
	pepper := make([]byte, pepperLen)
	if _, err := rand.Read(pepper); err != nil {
		return 0, fmt.Errorf("vault: %s: %w", op, err)
	}
	versions[strconv.Itoa(next)] = base64.StdEncoding.EncodeToString(pepper)
	data := pepperEntry{Current: next, Versions: versions}
	if err := s.casWrite(ctx, op, "", s.pepperPath(), data, kvVersion, policy.ErrConflict); err != nil {
		return 0, err
	}
	return next, nil
}

// readPeppers reads and decodes the pepper entry and returns its KV version
// (0 if there is none) for a check-and-set write.
func (s *Store) readPeppers(ctx context.Context, op string) (policy.Peppers, int, error) {
	e, err := s.read(ctx, op, "", s.pepperPath(), nil, maxBody)
	switch {
	case err != nil:
		return policy.Peppers{}, 0, err
	case !e.found && e.version > 0:
		return policy.Peppers{}, 0, fmt.Errorf("vault: %s: version %d of %s is deleted or destroyed; undelete it or restore the peppers", op, e.version, s.pepperPath())
	case !e.found:
		return policy.Peppers{}, 0, nil
	}
	p, err := decodePeppers(e.data)
	if err != nil {
		return policy.Peppers{}, 0, fmt.Errorf("vault: %s: %s: %w", op, s.pepperPath(), err)
	}
	return p, e.version, nil
}

// decodePeppers checks the entry strictly: versions are integers >= 1 with
// base64 peppers of at least policy.MinPepperLen bytes, and current names
// one of them.
func decodePeppers(data []byte) (policy.Peppers, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var pe pepperEntry
	if err := dec.Decode(&pe); err != nil {
		return policy.Peppers{}, fmt.Errorf(`want {"current": <int>, "versions": {"<int>": "<base64>"}}: %w`, err)
	}
	p := policy.Peppers{Current: pe.Current, Versions: make(map[int][]byte, len(pe.Versions))}
	for name, enc := range pe.Versions {
		v, err := strconv.Atoi(name)
		if err != nil || v < 1 || strconv.Itoa(v) != name {
			return policy.Peppers{}, fmt.Errorf("versions: %q is not an integer >= 1", name)
		}
		pepper, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return policy.Peppers{}, fmt.Errorf("versions.%s: not standard base64", name)
		}
		if len(pepper) < policy.MinPepperLen {
			return policy.Peppers{}, fmt.Errorf("versions.%s: %d bytes, need at least %d", name, len(pepper), policy.MinPepperLen)
		}
		p.Versions[v] = pepper
	}
	if _, ok := p.Versions[p.Current]; !ok {
		return policy.Peppers{}, fmt.Errorf("current: version %d is not in versions", p.Current)
	}
	return p, nil
}
