package vault

import (
	"strings"
	"testing"
	"time"
)

func TestConfigSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Mount != "secret" || c.BasePath != "keygate" || c.Timeout != 2*time.Second || c.Namespace != "" {
		t.Errorf("defaults = %+v", c)
	}
	c = Config{Mount: "kv", BasePath: "a/b", Timeout: time.Second}
	c.SetDefaults()
	if c.Mount != "kv" || c.BasePath != "a/b" || c.Timeout != time.Second {
		t.Errorf("SetDefaults overwrote set fields: %+v", c)
	}
}

var validateTests = []struct {
	name string
	edit func(*Config)
	want []string // substrings, one per expected problem; none means valid
}{
	{"defaults", func(*Config) {}, nil},
	{"http loopback", func(c *Config) { c.Addr = "http://127.0.0.1:8200" }, nil},
	{"nested base path", func(c *Config) { c.BasePath = "team-a/keygate.v2" }, nil},
	{"namespace", func(c *Config) { c.Namespace = "admin/team" }, nil},
	{"zero config", func(c *Config) { *c = Config{} }, []string{
		"vault: addr: required", "vault: token: required", "vault: mount: required",
		"vault: base_path: required", "vault: timeout: must be > 0", "vault: auth.min_backoff: must be > 0"}},
	{"addr without scheme", func(c *Config) { c.Addr = "vault:8200" }, []string{"vault: addr:"}},
	{"addr ftp", func(c *Config) { c.Addr = "ftp://vault" }, []string{"vault: addr:"}},
	{"addr without host", func(c *Config) { c.Addr = "https://" }, []string{`vault: addr: "https://" has no host`}},
	{"addr with credentials", func(c *Config) { c.Addr = "https://u:p@vault" }, []string{"vault: addr: must not contain credentials"}},
	{"token with newline", func(c *Config) { c.Token = "hvs.abc\n" }, []string{"vault: token: contains whitespace"}},
	{"mount with slash", func(c *Config) { c.Mount = "kv/v2" }, []string{`vault: mount: must not contain "/"`}},
	{"mount with space", func(c *Config) { c.Mount = "my kv" }, []string{"vault: mount:"}},
	{"base path leading slash", func(c *Config) { c.BasePath = "/keygate" }, []string{"vault: base_path:"}},
	{"base path trailing slash", func(c *Config) { c.BasePath = "keygate/" }, []string{"vault: base_path:"}},
	{"base path dotdot", func(c *Config) { c.BasePath = "a/../sys" }, []string{"vault: base_path:"}},
	{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"vault: timeout: must be > 0"}},
	{"namespace newline", func(c *Config) { c.Namespace = "a\nb" }, []string{"vault: namespace:"}},
	{"several at once", func(c *Config) { c.Addr, c.Mount, c.Timeout = "", "a/b", -1 }, []string{
		"vault: addr: required", "vault: mount:", "vault: timeout:"}},
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := Config{Addr: "https://vault.example.com:8200", Token: "hvs.abc"}
		c.SetDefaults()
		return c
	}
	for _, tt := range validateTests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
			if c.Token != "" && strings.Contains(err.Error(), strings.TrimSpace(c.Token)) {
				t.Errorf("Validate error %q contains the token", err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{Token: "t"}); err == nil || !strings.Contains(err.Error(), "vault: addr: required") {
		t.Errorf("New without addr = %v", err)
	}
}
