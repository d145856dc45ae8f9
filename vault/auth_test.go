package vault

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/goleak"
)

// leakOpts ignore the goroutines running now and the idle keep-alive
// connections of vault/api clients.
func leakOpts() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}
}

// readerPolicy writes a policy that can read base's keys, and returns its name.
func readerPolicy(t *testing.T, root *vaultapi.Client, base string) string {
	t.Helper()
	name := "keygate-reader-" + randomHex(4)
	hcl := `path "secret/data/` + base + `/keys/*" { capabilities = ["read"] }`
	if err := root.Sys().PutPolicy(name, hcl); err != nil {
		t.Fatal(err)
	}
	return name
}

// appRole enables an approle mount (unique per test) with a role of the
// given TTLs, and returns the mount, role id and a secret id.
func appRole(t *testing.T, root *vaultapi.Client, policy, ttl, maxTTL string) (mount, roleID, secretID string) {
	t.Helper()
	mount = "approle-" + randomHex(4)
	if err := root.Sys().EnableAuthWithOptions(mount, &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Sys().DisableAuth(mount) })
	rolePath := "auth/" + mount + "/role/keygate"
	_, err := root.Logical().Write(rolePath, map[string]any{
		"token_policies": policy, "token_ttl": ttl, "token_max_ttl": maxTTL,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := root.Logical().Read(rolePath + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID = s.Data["role_id"].(string)
	s, err = root.Logical().Write(rolePath+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return mount, roleID, s.Data["secret_id"].(string)
}

// authFixture is a key written with the root token, and a Store for the
// same base path logging in as auth says, its Run started.
type authFixture struct {
	*fixture
	id     string
	store  *Store
	log    *bytes.Buffer
	cancel context.CancelFunc
	done   chan error
}

func startAuth(t *testing.T, f *fixture, id string, auth func(*AuthConfig)) *authFixture {
	t.Helper()
	cfg := testConfig(f.vault.Addr, "", f.base)
	auth(&cfg.Auth)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	af := &authFixture{fixture: f, id: id, store: s, log: new(bytes.Buffer), cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: af.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { af.done <- s.Auth().Run(ctx, log) }()
	select {
	case <-s.Auth().Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("no login within 10s; log:\n%s", af.log)
	}
	return af
}

// stop cancels Run and checks it returned nil and that nothing leaked.
func (af *authFixture) stop(t *testing.T, secrets ...string) {
	t.Helper()
	af.cancel()
	select {
	case err := <-af.done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(af.log.String(), s) {
			t.Errorf("the log contains a secret:\n%s", af.log)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newKey(t *testing.T, f *fixture) string {
	t.Helper()
	id, rec := newRecord(t)
	if err := f.store.Create(context.Background(), id, rec); err != nil {
		t.Fatal(err)
	}
	return id
}

// lookupsFor runs Lookups of af.id from two goroutines for d and returns
// how many there were and the failures.
func (af *authFixture) lookupsFor(d time.Duration) (total int64, failed []error) {
	var n atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range 2 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_, err := af.store.Lookup(context.Background(), af.id)
				n.Add(1)
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return n.Load(), failed
}

func TestAppRoleRenewAndRelogin(t *testing.T) {
	f := newFixture(t) // starts the shared server first: not a leak
	defer goleak.VerifyNone(t, leakOpts()...)
	root := f.vault.Client(t)
	// Token TTL 6s, max 18s: vault/api's watcher ends 10-20% of a TTL before
	// the max (0.6-1.2 s here), and the re-login must land within that or
	// lookups meet an expired token. With 3s/9s that margin (0.3 s) was
	// sometimes too short for a login on a loaded machine.
	mount, roleID, secretID := appRole(t, root, readerPolicy(t, root, f.base), "6s", "18s")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret-id")
	if err := os.WriteFile(secretFile, []byte(secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	af := startAuth(t, f, newKey(t, f), func(a *AuthConfig) {
		a.Method, a.AppRoleMount, a.RoleID, a.SecretIDFile = AuthAppRole, mount, roleID, secretFile
	})
	const run, maxTTL = 25 * time.Second, 18 * time.Second
	start := time.Now()
	total, failed := af.lookupsFor(run)
	a := af.store.Auth()
	af.stop(t, secretID, af.store.client.Token())
	elapsed := time.Since(start)
	t.Logf("%d lookups, %d failed; logins %d, renewals %d, login failures %d",
		total, len(failed), a.Logins(), a.Renewals(), a.LoginFailures())
	for i, err := range failed {
		if i < 5 {
			t.Errorf("lookup failed: %v", err)
		}
	}
	if a.Renewals() < 1 {
		t.Errorf("renewals = %d, want >= 1", a.Renewals())
	}
	if a.Logins() < 2 {
		t.Errorf("logins = %d, want >= 2 (a re-login at max TTL)", a.Logins())
	}
	if limit := elapsed.Seconds()/maxTTL.Seconds() + 2; float64(a.Logins()) > limit {
		t.Errorf("logins = %d in %v, want <= %.1f", a.Logins(), elapsed, limit)
	}
	if !strings.Contains(af.log.String(), `"reason":"max_ttl"`) {
		t.Errorf("no max_ttl re-login logged:\n%s", af.log)
	}
}

func TestAppRoleReloginAfterRevoke(t *testing.T) {
	f := newFixture(t) // starts the shared server first: not a leak
	defer goleak.VerifyNone(t, leakOpts()...)
	root := f.vault.Client(t)
	mount, roleID, secretID := appRole(t, root, readerPolicy(t, root, f.base), "1h", "2h")
	af := startAuth(t, f, newKey(t, f), func(a *AuthConfig) {
		a.Method, a.AppRoleMount, a.RoleID, a.SecretID = AuthAppRole, mount, roleID, secretID
	})
	defer af.stop(t, secretID)
	if _, err := af.store.Lookup(context.Background(), af.id); err != nil {
		t.Fatal(err)
	}
	old := af.store.client.Token()
	if err := root.Auth().Token().RevokeTree(old); err != nil {
		t.Fatal(err)
	}
	_, err := af.store.Lookup(context.Background(), af.id)
	var e *Error
	if !errors.As(err, &e) || e.Class() != ClassForbidden {
		t.Fatalf("lookup with the revoked token = %v, want a 403", err)
	}
	waitLookupOK(t, af)
	a := af.store.Auth()
	if a.Logins() != 2 || af.store.client.Token() == old {
		t.Errorf("logins = %d (want 2), token replaced = %v", a.Logins(), af.store.client.Token() != old)
	}
}

// waitLookupOK waits up to 5 s for a Lookup of af.id to succeed.
func waitLookupOK(t *testing.T, af *authFixture) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := af.store.Lookup(context.Background(), af.id)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookups did not recover: %v\nlog:\n%s", err, af.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readerToken creates a token with policy via root.
func readerToken(t *testing.T, root *vaultapi.Client, policy string) string {
	t.Helper()
	s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

func TestTokenFileRotation(t *testing.T) {
	f := newFixture(t) // starts the shared server first: not a leak
	defer goleak.VerifyNone(t, leakOpts()...)
	root := f.vault.Client(t)
	pol := readerPolicy(t, root, f.base)
	first, second := readerToken(t, root, pol), readerToken(t, root, pol)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	af := startAuth(t, f, newKey(t, f), func(a *AuthConfig) {
		a.TokenFile, a.TokenFilePoll = file, 200*time.Millisecond
	})
	defer af.stop(t, first, second)
	if _, err := af.store.Lookup(context.Background(), af.id); err != nil {
		t.Fatal(err)
	}
	// Rotate: the poll picks up the new token.
	if err := os.WriteFile(file, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for af.store.client.Token() != second && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if af.store.client.Token() != second {
		t.Fatal("the rotated token was not picked up")
	}
	if err := root.Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	waitLookupOK(t, af)
}

func TestTokenFileRereadOn403(t *testing.T) {
	f := newFixture(t) // starts the shared server first: not a leak
	defer goleak.VerifyNone(t, leakOpts()...)
	root := f.vault.Client(t)
	pol := readerPolicy(t, root, f.base)
	first, second := readerToken(t, root, pol), readerToken(t, root, pol)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	af := startAuth(t, f, newKey(t, f), func(a *AuthConfig) { a.TokenFile, a.TokenFilePoll = file, time.Hour })
	defer af.stop(t, first, second)
	if err := os.WriteFile(file, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := root.Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	waitLookupOK(t, af) // the 403 made it re-read the file
	if af.store.client.Token() != second {
		t.Error("the store does not use the new token")
	}
}

// Without Run (one-shot CLI commands), the first request logs in.
func TestAppRoleLoginWithoutRun(t *testing.T) {
	f := newFixture(t)
	root := f.vault.Client(t)
	mount, roleID, secretID := appRole(t, root, readerPolicy(t, root, f.base), "1h", "2h")
	id := newKey(t, f)
	cfg := testConfig(f.vault.Addr, "", f.base)
	cfg.Auth.Method, cfg.Auth.AppRoleMount, cfg.Auth.RoleID, cfg.Auth.SecretID = AuthAppRole, mount, roleID, secretID
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Lookup(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Auth().Logins(); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
	select {
	case <-s.Auth().Ready():
	default:
		t.Error("Ready not closed after the inline login")
	}
}

func TestAppRoleBadSecretBacksOff(t *testing.T) {
	f := newFixture(t) // starts the shared server first: not a leak
	defer goleak.VerifyNone(t, leakOpts()...)
	root := f.vault.Client(t)
	mount, roleID, _ := appRole(t, root, readerPolicy(t, root, f.base), "1h", "2h")
	cfg := testConfig(f.vault.Addr, "", f.base)
	cfg.Auth.Method, cfg.Auth.AppRoleMount, cfg.Auth.RoleID, cfg.Auth.SecretID = AuthAppRole, mount, roleID, "not-the-secret"
	cfg.Auth.MinBackoff, cfg.Auth.MaxBackoff = 100*time.Millisecond, 400*time.Millisecond
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var buf bytes.Buffer
	s.Auth().Run(ctx, slog.New(slog.NewJSONHandler(&buf, nil)))
	n := s.Auth().LoginFailures()
	// 2 s with waits of 50–100, 100–200, then 200–400 ms: 6 to 11 attempts.
	if n < 4 || n > 12 {
		t.Errorf("%d login attempts in 2s, want 4..12 (backoff)", n)
	}
	select {
	case <-s.Auth().Ready():
		t.Error("Ready closed without a login")
	default:
	}
	_, err = s.Lookup(context.Background(), "0123456789abcdefghijkl")
	if err == nil || strings.Contains(buf.String(), "not-the-secret") {
		t.Errorf("lookup = %v; log leaks the secret: %v", err, strings.Contains(buf.String(), "not-the-secret"))
	}
}
