package vault

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/keygate/keygate/policy"
)

// pepperLen is the size of a pepper made by InitPepper.
const pepperLen = 32

func (s *Store) pepperPath() string { return s.kvMount + "/data/" + s.base + "/pepper" }

// Peppers reads the HMAC peppers. No pepper entry is zero Peppers and no
// error (keys hashed with plain sha256 need none); an entry whose latest
// version is deleted, or that is malformed, is an error. Errors never
// contain pepper bytes.
func (s *Store) Peppers(ctx context.Context) (policy.Peppers, error) {
	p, _, err := s.readPeppers(ctx, OpPeppers)
	return p, err
}

// InitPepper adds a new random 32-byte pepper version and makes it current,
// keeping the older versions. It writes with check-and-set against the
// entry it read, so concurrent rotations cannot lose a version: the loser
// gets policy.ErrConflict. It returns the new pepper version.
func (s *Store) InitPepper(ctx context.Context) (version int, err error) {
	const op = OpInitPepper
	p, kvVersion, err := s.readPeppers(ctx, op)
	if err != nil {
		return 0, err
	}
	next := 1
	for v := range p.Versions {
		next = max(next, v+1)
	}
	pepper := make([]byte, pepperLen)
	if _, err := rand.Read(pepper); err != nil {
		return 0, fmt.Errorf("vault: %s: %w", op, err)
	}
	if p.Versions == nil {
		p.Versions = map[int][]byte{}
	}
	p.Current, p.Versions[next] = next, pepper
	data := p.Doc()
	if err := s.casWrite(ctx, op, "", s.pepperPath(), data, kvVersion, policy.ErrConflict); err != nil {
		return 0, err
	}
	return next, nil
}

// readPeppers reads and decodes the pepper entry and returns its KV version
// (0 if there is none) for a check-and-set write.
func (s *Store) readPeppers(ctx context.Context, op Operation) (policy.Peppers, int, error) {
	e, err := s.read(ctx, op, "", s.pepperPath(), nil, maxBody)
	switch {
	case err != nil:
		return policy.Peppers{}, 0, err
	case !e.found && e.version > 0:
		return policy.Peppers{}, 0, fmt.Errorf("vault: %s: version %d of %s is deleted or destroyed; undelete it or restore the peppers", op, e.version, s.pepperPath())
	case !e.found:
		return policy.Peppers{}, 0, nil
	}
	p, err := policy.ParsePeppers(e.data)
	if err != nil {
		return policy.Peppers{}, 0, fmt.Errorf("vault: %s: %s: %w", op, s.pepperPath(), err)
	}
	return p, e.version, nil
}
