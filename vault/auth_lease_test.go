package vault

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/goleak"
)

// TestSecretTTL: the lease a login's answer gives its token, as logged.
func TestSecretTTL(t *testing.T) {
	tests := []struct {
		name   string
		secret *vaultapi.Secret
		want   time.Duration
	}{
		{"no answer", nil, 0},
		{"no auth section", &vaultapi.Secret{}, 0},
		{"no lease", &vaultapi.Secret{Auth: &vaultapi.SecretAuth{}}, 0},
		{"one hour", &vaultapi.Secret{Auth: &vaultapi.SecretAuth{LeaseDuration: 3600}}, time.Hour},
	}
	for _, tt := range tests {
		if got := secretTTL(tt.secret); got != tt.want {
			t.Errorf("%s: secretTTL = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestLoginWithoutLease: a login whose token has no lease (lease_duration
// 0, a token that never expires) is kept until Vault refuses it: it is not
// handed to a renewal watcher, which would give it up at once and log in
// again in a loop. A real Vault's login methods never issue such a token
// (only root tokens have no lease, and logins cannot create those), so a
// fake login endpoint stands in. Twenty 403 signals, each confirmed with
// lookup-self (the token is fine), show Run is holding the token (a
// watcher's end would win over a signal about every other time).
func TestLoginWithoutLease(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts()...)
	var logins atomic.Int64
	lookups := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "PUT /v1/auth/approle/login", "POST /v1/auth/approle/login":
			logins.Add(1)
			io.WriteString(w, `{"auth":{"client_token":"`+fakeToken+`","lease_duration":0,"renewable":false,"policies":["keygate"]}}`)
		case "GET /v1/auth/token/lookup-self":
			io.WriteString(w, `{"data":{"id":"`+fakeToken+`","ttl":0}}`)
			select {
			case lookups <- struct{}{}:
			default:
			}
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL, "", "keygate")
	cfg.Auth.Method, cfg.Auth.AppRoleMount, cfg.Auth.RoleID, cfg.Auth.SecretID = AuthAppRole, "approle", "role", "secret"
	cfg.Auth.MinBackoff = time.Nanosecond // confirm every 403 signal
	s, err := New(cfg)
	check(t, err)
	a := s.Auth()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no login within 10s")
	}
	for i := range 20 {
		a.noteForbidden(fakeToken)
		select {
		case <-lookups:
		case <-time.After(10 * time.Second):
			t.Fatalf("403 signal %d: no lookup-self within 10s", i+1)
		}
	}
	if n := logins.Load(); n != 1 {
		t.Errorf("%d logins, want 1: a token without a lease was given up", n)
	}
}
