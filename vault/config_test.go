package vault

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/field"
)

// DefaultConfig is the one place the defaults are written: pin them, and
// check that Addr and a token are all it lacks.
func TestDefaultConfig(t *testing.T) {
	want := Config{Mount: "secret", BasePath: "keygate", Engine: EngineKV, KVMount: "secret", Timeout: 2 * time.Second, Auth: AuthConfig{
		Method: AuthToken, TokenFilePoll: 5 * time.Second, AppRoleMount: "approle", KubernetesMount: "kubernetes",
		JWTFile: "/var/run/secrets/kubernetes.io/serviceaccount/token", MinBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second,
	}}
	if got := DefaultConfig(); got != want {
		t.Errorf("DefaultConfig() =\n%+v\nwant\n%+v", got, want)
	}
	c := DefaultConfig()
	c.Addr, c.Token = "http://127.0.0.1:8200", "hvs.abc"
	if err := c.Validate(); err != nil {
		t.Errorf("DefaultConfig with Addr and Token: %v", err)
	}
	wantProblems(t, DefaultConfig().Validate(), "vault-addr: required", "vault-token: required (or --vault-token-file)")
}

// validateTest edits a valid Config and lists the problems Validate must
// then report.
type validateTest struct {
	name string
	edit func(*Config)
	want []string // substrings, one per expected problem; none means valid
}

var validateTests = []validateTest{
	{"defaults", func(*Config) {}, nil},
	{"http loopback", func(c *Config) { c.Addr = "http://127.0.0.1:8200" }, nil},
	{"nested base path", func(c *Config) { c.BasePath = "team-a/keygate.v2" }, nil},
	{"namespace", func(c *Config) { c.Namespace = "admin/team" }, nil},
	{"zero config: no zero means a default", func(c *Config) { *c = Config{} }, []string{
		"vault-addr: required", `vault-auth: "": want`, "vault-mount: required", `vault-engine: "": want`,
		"vault-base-path: required", "vault-timeout: must be > 0, got 0s", "vault-min-backoff: must be > 0"}},
	{"plugin engine", func(c *Config) { c.Engine, c.Mount = EnginePlugin, "keygate" }, nil},
	{"unknown engine", func(c *Config) { c.Engine = "kv2" }, []string{`vault-engine: "kv2": want "kv" or "plugin"`}},
	{"plugin engine without its KV mount", func(c *Config) { c.Engine, c.KVMount = EnginePlugin, "" }, []string{"vault-kv-mount:"}},
	{"zero timeout", func(c *Config) { c.Timeout = 0 }, []string{"vault-timeout: must be > 0, got 0s"}},
	{"zero mount", func(c *Config) { c.Mount = "" }, []string{"vault-mount: required"}},
	{"zero base path", func(c *Config) { c.BasePath = "" }, []string{"vault-base-path: required"}},
	{"addr without scheme", func(c *Config) { c.Addr = "vault:8200" }, []string{"vault-addr:"}},
	{"addr ftp", func(c *Config) { c.Addr = "ftp://vault" }, []string{"vault-addr:"}},
	{"addr without host", func(c *Config) { c.Addr = "https://" }, []string{`vault-addr: "https://" has no host`}},
	{"addr with credentials", func(c *Config) { c.Addr = "https://u:p@vault" }, []string{"vault-addr: must not contain credentials"}},
	{"token with newline", func(c *Config) { c.Token = "hvs.abc\n" }, []string{"vault-token: contains whitespace"}},
	{"mount with slash", func(c *Config) { c.Mount = "kv/v2" }, []string{`vault-mount: must not contain "/"`}},
	{"mount with space", func(c *Config) { c.Mount = "my kv" }, []string{"vault-mount:"}},
	{"base path leading slash", func(c *Config) { c.BasePath = "/keygate" }, []string{"vault-base-path:"}},
	{"base path trailing slash", func(c *Config) { c.BasePath = "keygate/" }, []string{"vault-base-path:"}},
	{"base path dotdot", func(c *Config) { c.BasePath = "a/../sys" }, []string{"vault-base-path:"}},
	{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"vault-timeout: must be > 0, got -1s"}},
	{"namespace newline", func(c *Config) { c.Namespace = "a\nb" }, []string{"vault-namespace:"}},
	{"namespace with a space", func(c *Config) { c.Namespace = "admin team" }, []string{"vault-namespace:"}},
	{"several at once", func(c *Config) { c.Addr, c.Mount, c.Timeout = "", "a/b", -1 }, []string{
		"vault-addr: required", "vault-mount:", "vault-timeout:"}},
}

func TestConfigValidate(t *testing.T) {
	runValidateTests(t, validateTests)
}

// TestValidSegment: a mount or base path segment is [A-Za-z0-9._-]+, not
// "." or "..": each range's ends are in, the characters just outside them
// are not.
func TestValidSegment(t *testing.T) {
	valid := []string{"a", "z", "A", "Z", "0", "9", "_", "-", "...", ".a", "kv-2_v.1"}
	invalid := []string{"", ".", "..", "`", "{", "@", "[", "/", ":", " ", "\x7f", "é", "a b", "kv@2"}
	for _, s := range valid {
		if !validSegment(s) {
			t.Errorf("validSegment(%q) = false, want true", s)
		}
	}
	for _, s := range invalid {
		if validSegment(s) {
			t.Errorf("validSegment(%q) = true, want false", s)
		}
	}
}

// runValidateTests starts each test from DefaultConfig with Addr and a
// token, applies its edit, and checks Validate's problems. Validate must
// leave the Config as it was: nothing is filled in.
func runValidateTests(t *testing.T, tests []validateTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Addr, c.Token = "https://vault.example.com:8200", "hvs.abc"
			tt.edit(&c)
			before := c
			err := c.Validate()
			if c != before {
				t.Errorf("Validate changed the Config:\n%+v\nwas\n%+v", c, before)
			}
			wantProblems(t, err, tt.want...)
			for _, secret := range []string{c.Token, c.Auth.SecretID} {
				if secret = strings.TrimSpace(secret); secret != "" && err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("Validate error %q contains a secret", err)
				}
			}
		})
	}
}

// wantProblems checks that err has exactly one problem per substring in
// want (none: err is nil), each a *field.Error.
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("Validate = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate = nil, want %q", want)
	}
	problems := field.Split(err)
	if len(problems) != len(want) {
		t.Errorf("Validate reported %d problems, want %d:\n%v", len(problems), len(want), err)
	}
	for _, p := range problems {
		if fe := (*field.Error)(nil); !errors.As(p, &fe) || len(fe.Names) == 0 {
			t.Errorf("problem %q is not a *field.Error naming its field", p)
		}
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate = %q, want it to contain %q", err, w)
		}
	}
}

// New validates and fills in nothing: a zero Timeout is an error, not 2s.
func TestNewRejectsInvalidConfig(t *testing.T) {
	c := DefaultConfig()
	c.Token = "t"
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "vault-addr: required") {
		t.Errorf("New without addr = %v", err)
	}
	c.Addr, c.Timeout = "http://127.0.0.1:1", 0
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "vault-timeout: must be > 0") {
		t.Errorf("New with a zero timeout = %v, want an error naming vault-timeout", err)
	}
	if _, err := New(Config{Addr: "http://127.0.0.1:1", Token: "t"}); err == nil {
		t.Error("New accepted a Config not from DefaultConfig (zero mount, base path, timeout, method)")
	}
}
