package filestore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// fileID identifies one version of the file on disk cheaply; Watch re-reads
// the file only when it changes (or while its mtime is too recent to trust).
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func idOf(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id
}

// content is the file's bytes as read, with the id of the file they came
// from and their hash.
type content struct {
	data []byte
	id   fileID
	sum  [sha256.Size]byte
	mode os.FileMode
}

// readContent reads the file, taking its id from the same open file so that
// id and bytes belong together.
func readContent(path string) (*content, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return &content{data: data, id: idOf(fi), sum: sha256.Sum256(data), mode: fi.Mode()}, nil
}

// load reads and parses the file.
func load(path string) (*state, *content, error) {
	c, err := readContent(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read key file: %w", err)
	}
	st, err := parse(c.data)
	if err != nil {
		return nil, c, fmt.Errorf("key file %s: %w", path, err)
	}
	return st, c, nil
}

// Lock polling bounds: flock itself cannot be cancelled, so a writer polls a
// non-blocking flock and gives up when its context is done.
const (
	lockMinWait = time.Millisecond
	lockMaxWait = 50 * time.Millisecond
)

// lockFile takes an exclusive flock on path (created if needed) and returns
// the function that releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for wait := lockMinWait; ; wait = min(2*wait, lockMaxWait) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// writeFile replaces path with data atomically: temp file in the same
// directory (mode 0600), fsync, rename, fsync the directory. On error the
// old file is intact and the temp file is removed.
func writeFile(path string, data []byte, rename func(oldpath, newpath string) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := rename(f.Name(), path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync key file directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key file directory: %w", err)
	}
	return nil
}
