package vaulttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Seal seals Vault: every request then gets 503 "Vault is sealed", a
// real-server fault. Unseal undoes it (data is kept).
func (s *Vault) Seal(t testing.TB) {
	t.Helper()
	if err := s.Client(t).Sys().Seal(); err != nil {
		t.Fatalf("vaulttest: seal: %v", err)
	}
}

// readUnsealKey finds the dev banner's unseal key in the log after offset.
func (s *Vault) readUnsealKey(logPath string, offset int64) error {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	const marker = "Unseal Key: "
	i := bytes.Index(data[min(offset, int64(len(data))):], []byte(marker))
	if i < 0 {
		return fmt.Errorf("no %q banner in the log yet", marker)
	}
	rest := string(data[offset+int64(i)+int64(len(marker)):])
	key, _, found := strings.Cut(rest, "\n")
	if !found {
		return errors.New("unseal key line not complete yet")
	}
	s.mu.Lock()
	s.unsealKey = strings.TrimSpace(key)
	s.mu.Unlock()
	return nil
}

// Unseal unseals Vault with the dev unseal key printed in its log.
func (s *Vault) Unseal(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	key := s.unsealKey
	s.mu.Unlock()
	status, err := s.Client(t).Sys().Unseal(key)
	if err != nil {
		t.Fatalf("vaulttest: unseal: %v", err)
	}
	if status.Sealed {
		t.Fatalf("vaulttest: unseal: still sealed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for s.probe(ctx, &http.Client{Timeout: time.Second}) != nil && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
}
