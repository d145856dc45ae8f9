package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/keygate/keygate/policy"
)

// FileCoordinator is the Coordinator of the file store: the lease is an
// exclusive flock on "<key file>.events.lock", held for as long as the
// process runs (the kernel releases it when the process dies, so a second
// `keygate events` on the same host takes over at once), and the state is
// "<key file>.events.json", replaced atomically. Both sit beside the key
// file; keygate serve never reads them. flock is per host: replicas on
// other hosts sharing the file over a network file system are not
// coordinated (run one).
type FileCoordinator struct {
	lockPath, statePath string

	mu   sync.Mutex
	lock *os.File // held flock; nil when not held
}

// NewFileCoordinator coordinates through files beside keyFile.
func NewFileCoordinator(keyFile string) *FileCoordinator {
	return &FileCoordinator{lockPath: keyFile + ".events.lock", statePath: keyFile + ".events.json"}
}

// AcquireEventsLease takes the flock if this process does not hold it
// yet; holder, now and ttl do not matter (the lock lasts as long as the
// process).
func (c *FileCoordinator) AcquireEventsLease(context.Context, string, time.Time, time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock != nil {
		return true, nil
	}
	f, err := os.OpenFile(c.lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("events lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("events lock %s: %w", c.lockPath, err)
	}
	c.lock = f
	return true, nil
}

// ReleaseEventsLease releases the flock.
func (c *FileCoordinator) ReleaseEventsLease(context.Context, string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock == nil {
		return nil
	}
	err := c.lock.Close()
	c.lock = nil
	return err
}

// stateFile is the state file's content.
type stateFile struct {
	Version int             `json:"version"`
	State   json.RawMessage `json:"state"`
}

func (c *FileCoordinator) read() (stateFile, error) {
	var sf stateFile
	data, err := os.ReadFile(c.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return sf, nil
	}
	if err != nil {
		return sf, fmt.Errorf("events state: %w", err)
	}
	if err := json.Unmarshal(data, &sf); err != nil {
		return stateFile{Version: -1}, nil // junk: overwritten by the next save at version -1
	}
	return sf, nil
}

// EventsState reads the state file.
func (c *FileCoordinator) EventsState(context.Context) (json.RawMessage, int, error) {
	sf, err := c.read()
	return sf.State, sf.Version, err
}

// SaveEventsState replaces the state file (temporary file, fsync, rename)
// if it is still at version.
func (c *FileCoordinator) SaveEventsState(_ context.Context, data json.RawMessage, version int) (int, error) {
	cur, err := c.read()
	if err != nil {
		return version, err
	}
	if cur.Version != version {
		return version, fmt.Errorf("events state: at version %d, not %d: %w", cur.Version, version, policy.ErrConflict)
	}
	next := max(version, 0) + 1
	out, err := json.Marshal(stateFile{Version: next, State: data})
	if err != nil {
		return version, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.statePath), ".events-state-*")
	if err != nil {
		return version, fmt.Errorf("events state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return version, fmt.Errorf("events state: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return version, fmt.Errorf("events state: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.statePath); err != nil {
		return version, fmt.Errorf("events state: %w", err)
	}
	return next, nil
}
