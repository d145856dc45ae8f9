package extauthz

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := Config{
		KeyPrefix: "kg", KeyHeader: "x-api-key", AuthHeader: "authorization",
		CacheSize: 100_000, NegativeCacheSize: 10_000,
		FoundTTL: 30 * time.Second, NotFoundTTL: 5 * time.Second, StaleTTL: 5 * time.Minute,
		LookupTimeout: 150 * time.Millisecond, StoreReadRate: 500, StoreReadBurst: 100,
	}
	got := c
	got.Now = nil
	if got.KeyPrefix != want.KeyPrefix || got.KeyHeader != want.KeyHeader || got.AuthHeader != want.AuthHeader ||
		got.CacheSize != want.CacheSize || got.NegativeCacheSize != want.NegativeCacheSize ||
		got.FoundTTL != want.FoundTTL || got.NotFoundTTL != want.NotFoundTTL || got.StaleTTL != want.StaleTTL ||
		got.LookupTimeout != want.LookupTimeout || got.StoreReadRate != want.StoreReadRate || got.StoreReadBurst != want.StoreReadBurst {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if c.Now == nil {
		t.Error("Now not defaulted")
	}
}

func TestConfigValid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"defaults", func(*Config) {}},
		{"other prefix", func(c *Config) { c.KeyPrefix = "acme2" }},
		{"custom headers", func(c *Config) { c.KeyHeader, c.AuthHeader = "x-acme-key", "proxy-authorization" }},
		{"stale disabled", func(c *Config) { c.StaleTTL = -1 }},
		{"unlimited reads", func(c *Config) { c.StoreReadRate = -1 }},
		{"tiny sizes", func(c *Config) { c.CacheSize, c.NegativeCacheSize, c.StoreReadBurst = 1, 1, 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			tc.mod(&c)
			c.SetDefaults()
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if _, err := NewServer(c, newFakeStore(), testHasher, discardLogger); err != nil {
				t.Errorf("NewServer: %v", err)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Config)
		defaults  bool
		wantField []string
	}{
		{"upper-case prefix", func(c *Config) { c.KeyPrefix = "KG" }, true, []string{"key-prefix"}},
		{"prefix with underscore", func(c *Config) { c.KeyPrefix = "k_g" }, true, []string{"key-prefix"}},
		{"prefix too long", func(c *Config) { c.KeyPrefix = "abcdefghijk" }, true, []string{"key-prefix"}},
		{"prefix starts with digit", func(c *Config) { c.KeyPrefix = "1kg" }, true, []string{"key-prefix"}},
		{"upper-case key header", func(c *Config) { c.KeyHeader = "X-Api-Key" }, true, []string{"key-header"}},
		{"upper-case auth header", func(c *Config) { c.AuthHeader = "Authorization" }, true, []string{"auth-header"}},
		{"header with space", func(c *Config) { c.KeyHeader = "x api key" }, true, []string{"key-header"}},
		{"pseudo-header", func(c *Config) { c.KeyHeader = ":path" }, true, []string{"key-header"}},
		{"header with CRLF", func(c *Config) { c.AuthHeader = "x-auth\r\n" }, true, []string{"auth-header"}},
		{"same key and auth header", func(c *Config) { c.KeyHeader, c.AuthHeader = "x-key", "x-key" }, true, []string{"must differ"}},
		{"auth header equals default key header", func(c *Config) { c.AuthHeader = "x-api-key" }, true, []string{"must differ"}},
		{"x-keygate key header", func(c *Config) { c.KeyHeader = "x-keygate-key" }, true, []string{"key-header"}},
		{"x-keygate auth header", func(c *Config) { c.AuthHeader = "x-keygate-auth" }, true, []string{"auth-header"}},
		{"negative found TTL", func(c *Config) { c.FoundTTL = -time.Second }, true, []string{"found-ttl"}},
		{"negative not-found TTL", func(c *Config) { c.NotFoundTTL = -1 }, true, []string{"not-found-ttl"}},
		{"negative lookup timeout", func(c *Config) { c.LookupTimeout = -time.Millisecond }, true, []string{"lookup-timeout"}},
		{"negative cache size", func(c *Config) { c.CacheSize = -1 }, true, []string{"cache-size"}},
		{"negative negative-cache size", func(c *Config) { c.NegativeCacheSize = -5 }, true, []string{"negative-cache-size"}},
		{"negative burst", func(c *Config) { c.StoreReadBurst = -1 }, true, []string{"store-read-burst"}},
		{"zero TTLs without SetDefaults", func(c *Config) {
			c.KeyPrefix, c.KeyHeader, c.AuthHeader = "kg", "x-api-key", "authorization"
			c.CacheSize, c.NegativeCacheSize, c.StoreReadBurst = 1, 1, 1
		}, false, []string{"found-ttl", "not-found-ttl", "lookup-timeout"}},
		{"zero config without SetDefaults", func(*Config) {}, false, []string{"key-prefix", "key-header", "auth-header", "found-ttl", "cache-size", "store-read-burst"}},
		{"many problems at once", func(c *Config) {
			c.KeyPrefix, c.KeyHeader, c.AuthHeader = "BAD", "X-Key", "x-keygate-auth"
			c.FoundTTL, c.NotFoundTTL, c.CacheSize = -1, -1, -1
		}, true, []string{"key-prefix", "key-header", "auth-header", "found-ttl", "not-found-ttl", "cache-size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			tc.mod(&c)
			if tc.defaults {
				c.SetDefaults()
			}
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted a bad config")
			}
			for _, f := range tc.wantField {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error does not name %q:\n%v", f, err)
				}
			}
			if tc.defaults {
				if _, err := NewServer(c, newFakeStore(), testHasher, discardLogger); err == nil {
					t.Error("NewServer accepted a bad config")
				}
			}
		})
	}
}

// The default prefix is policy's.
func TestConfigDefaultPrefix(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.KeyPrefix != policy.DefaultPrefix {
		t.Errorf("KeyPrefix = %q, want %q", c.KeyPrefix, policy.DefaultPrefix)
	}
}
