package vault

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
)

const alicePassword = "alice-pw-not-in-errors"

// userpassAlice enables userpass at a new mount with one user, alice, whose
// tokens have the default policy and a TTL of one hour.
func userpassAlice(t *testing.T, root *vaultapi.Client) string {
	t.Helper()
	mount := "up" + randomHex(4)
	if err := root.Sys().EnableAuthWithOptions(mount, &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatalf("enable userpass: %v", err)
	}
	t.Cleanup(func() { _ = root.Sys().DisableAuth(mount) })
	if _, err := root.Logical().Write("auth/"+mount+"/users/alice", map[string]any{
		"password": alicePassword, "token_policies": "default", "token_ttl": "1h",
	}); err != nil {
		t.Fatalf("create alice: %v", err)
	}
	return mount
}

// TestSignIn: the console's sign-in with a person's own credentials, and
// who Vault says they are.
func TestSignIn(t *testing.T) {
	v := vaulttest.Server(t)
	root := v.Client(t)
	mount := userpassAlice(t, root)
	tok, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{
		Policies: []string{"default"}, TTL: "1h", DisplayName: "bob",
	})
	if err != nil {
		t.Fatal(err)
	}
	bobToken := tok.Auth.ClientToken
	cfg := testConfig(v.Addr, "", "unused")
	ctx := context.Background()

	signedIn := []struct {
		name, method, mount, user, secret string
		display                           string
		entity                            bool // has an identity entity
		policy                            string
		expires                           bool // false: a token with no TTL
	}{
		{"userpass", PersonUserpass, mount, "alice", alicePassword, mount + "-alice", true, "default", true},
		{"token", PersonToken, "", "ignored", bobToken, "token-bob", false, "default", true},
		{"root token", PersonToken, "", "", v.Token, "token", false, "root", false},
	}
	for _, tt := range signedIn {
		t.Run("signed in/"+tt.name, func(t *testing.T) {
			p, err := SignIn(ctx, cfg, tt.method, tt.mount, tt.user, tt.secret)
			if err != nil || p == nil {
				t.Fatalf("SignIn = %v, %v", p, err)
			}
			if p.DisplayName != tt.display || (p.EntityID != "") != tt.entity || !slices.Contains(p.Policies, tt.policy) {
				t.Errorf("SignIn = %s with policies %v; want %q (entity: %v) with %q", p, p.Policies, tt.display, tt.entity, tt.policy)
			}
			if tt.method == PersonToken && p.Token != tt.secret || tt.method != PersonToken && (p.Token == "" || p.Token == tt.secret) {
				t.Errorf("SignIn: the person's token is not the one %s gave", tt.method)
			}
			// A token's TTL is an hour here; the bounds leave a loaded
			// machine plenty of time.
			now := time.Now()
			if tt.expires && (p.Expires.Before(now.Add(30*time.Minute)) || p.Expires.After(now.Add(2*time.Hour))) {
				t.Errorf("Expires = %v, want in about an hour", p.Expires)
			}
			if !tt.expires && !p.Expires.IsZero() {
				t.Errorf("Expires = %v for a token with no TTL, want zero", p.Expires)
			}
		})
	}

	refused := []struct {
		name, method, mount, user, secret string
		status                            int // 0: refused before asking Vault
	}{
		{"empty token", PersonToken, "", "", "", 0},
		{"unknown token", PersonToken, "", "", "hvs.no-such-token", 403},
		{"wrong password", PersonUserpass, mount, "alice", "wrong-" + alicePassword, 400},
		{"unknown user", PersonUserpass, mount, "mallory", alicePassword, 400},
		{"no user", PersonUserpass, mount, "", alicePassword, 0},
		{"no password", PersonUserpass, mount, "alice", "", 0},
		{"user with a slash", PersonUserpass, mount, "alice/../x", alicePassword, 0},
		{"mount with a slash", PersonUserpass, mount + "/x", "alice", alicePassword, 0},
		{"default mount absent", PersonLDAP, "", "alice", alicePassword, 403},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			p, err := SignIn(ctx, cfg, tt.method, tt.mount, tt.user, tt.secret)
			if p != nil || !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("SignIn = %v, %v; want ErrBadCredentials", p, err)
			}
			status := 0
			var verr *Error
			if errors.As(err, &verr) {
				status = verr.Status
			}
			if status != tt.status {
				t.Errorf("SignIn = %v: want HTTP status %d (0: no request)", err, tt.status)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}

	t.Run("unknown method", func(t *testing.T) {
		if p, err := SignIn(ctx, cfg, "github", "", "alice", alicePassword); p != nil || err == nil || errors.Is(err, ErrBadCredentials) {
			t.Errorf("SignIn with an unknown method = %v, %v; want an error that is not ErrBadCredentials", p, err)
		}
	})
}

// TestSignInVaultDown: Vault not answering is not a refusal of the
// credentials.
func TestSignInVaultDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("http://"+l.Addr().String(), "", "unused")
	l.Close()
	for _, method := range []string{PersonToken, PersonUserpass} {
		p, err := SignIn(context.Background(), cfg, method, "", "alice", alicePassword)
		var verr *Error
		if p != nil || !errors.As(err, &verr) || verr.Class() != ClassUnreachable || errors.Is(err, ErrBadCredentials) {
			t.Errorf("SignIn (%s) with Vault down = %v, %v; want an unreachable *Error", method, p, err)
		}
	}
	err = SignOut(context.Background(), cfg, "hvs.some-token")
	var verr *Error
	if !errors.As(err, &verr) || verr.Op != OpPersonRevoke || verr.Class() != ClassUnreachable {
		t.Errorf("SignOut with Vault down = %v, want an unreachable person_revoke *Error", err)
	}
}

// TestSignOut: signing out revokes the person's token: it signs in no
// more, and signing out again is refused.
func TestSignOut(t *testing.T) {
	v := vaulttest.Server(t)
	mount := userpassAlice(t, v.Client(t))
	cfg := testConfig(v.Addr, "", "unused")
	ctx := context.Background()
	p, err := SignIn(ctx, cfg, PersonUserpass, mount, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := SignOut(ctx, cfg, p.Token); err != nil {
		t.Fatalf("SignOut = %v", err)
	}
	if _, err := SignIn(ctx, cfg, PersonToken, "", "", p.Token); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("SignIn with the token after SignOut = %v, want ErrBadCredentials", err)
	}
	err = SignOut(ctx, cfg, p.Token)
	var verr *Error
	if !errors.As(err, &verr) || verr.Op != OpPersonRevoke || verr.Status != 403 || !errors.Is(err, ErrBadCredentials) {
		t.Errorf("SignOut of a revoked token = %v, want a 403 person_revoke *Error wrapping ErrBadCredentials", err)
	}
}

// TestPersonError: a refused sign-in (400, 403) wraps ErrBadCredentials;
// anything else is Vault failing. Vault's messages are kept, joined and
// bounded.
func TestPersonError(t *testing.T) {
	long := strings.Repeat("m", 300)
	refused := func(status int, msgs ...string) error {
		return &vaultapi.ResponseError{StatusCode: status, Errors: msgs}
	}
	tests := []struct {
		name   string
		err    error
		status int
		bad    bool
		msg    string
	}{
		{"400", refused(400, "invalid username or password"), 400, true, "invalid username or password"},
		{"403", refused(403, "permission denied"), 403, true, "permission denied"},
		{"404", refused(404, "no handler for route"), 404, false, "no handler for route"},
		{"500", refused(500, "internal error"), 500, false, "internal error"},
		{"503 without a message", refused(503), 503, false, "Service Unavailable"},
		{"messages joined", refused(400, "one", "two"), 400, true, "one; two"},
		{"300 bytes kept", refused(400, long), 400, true, long},
		{"301 bytes cut", refused(400, long+"m"), 400, true, long + "…"},
		{"no response", errors.New("dial tcp: connection refused"), 0, false, "dial tcp: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := personError(OpPersonLogin, tt.err)
			var verr *Error
			if !errors.As(err, &verr) || verr.Op != OpPersonLogin || verr.Status != tt.status {
				t.Fatalf("personError = %#v, want a %s *Error with status %d", err, OpPersonLogin, tt.status)
			}
			if errors.Is(err, ErrBadCredentials) != tt.bad {
				t.Errorf("personError = %v: wraps ErrBadCredentials %v, want %v", err, !tt.bad, tt.bad)
			}
			want := tt.msg
			if tt.bad {
				want = ErrBadCredentials.Error() + ": " + tt.msg
			}
			if got := verr.Err.Error(); got != want {
				t.Errorf("cause = %q, want %q", got, want)
			}
		})
	}
}
