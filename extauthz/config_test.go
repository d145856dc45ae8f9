package extauthz

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/field"
	"github.com/keygate/keygate/policy"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	got := c
	got.Now = nil
	want := Config{
		KeyPrefix: policy.DefaultPrefix, KeyHeader: "x-api-key", AuthHeader: "authorization",
		CacheSize: 100_000, NegativeCacheSize: 10_000,
		FoundTTL: 30 * time.Second, MaxRecordAge: 10 * time.Minute, NotFoundTTL: 5 * time.Second, StaleTTL: 5 * time.Minute,
		LookupTimeout: 150 * time.Millisecond, StoreReadRate: 500, StoreReadBurst: 100,
		UnknownKeyRate: 50, UnknownKeyBurst: 500, UnknownKeyPer: PerPeer, MaxRequestBytes: 256 << 10,
	}
	if got.KeyPrefix != want.KeyPrefix || got.KeyHeader != want.KeyHeader || got.AuthHeader != want.AuthHeader ||
		got.CacheSize != want.CacheSize || got.NegativeCacheSize != want.NegativeCacheSize ||
		got.FoundTTL != want.FoundTTL || got.MaxRecordAge != want.MaxRecordAge || got.NotFoundTTL != want.NotFoundTTL || got.StaleTTL != want.StaleTTL ||
		got.LookupTimeout != want.LookupTimeout || got.StoreReadRate != want.StoreReadRate || got.StoreReadBurst != want.StoreReadBurst ||
		got.UnknownKeyRate != want.UnknownKeyRate || got.UnknownKeyBurst != want.UnknownKeyBurst ||
		got.UnknownKeyPer != want.UnknownKeyPer || got.MaxRequestBytes != want.MaxRequestBytes {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if c.Now == nil {
		t.Error("Now not set")
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
		{"stale disabled", func(c *Config) { c.StaleTTL = 0 }},
		{"max record age off", func(c *Config) { c.MaxRecordAge = 0 }},
		{"max record age under found TTL", func(c *Config) { c.FoundTTL, c.MaxRecordAge = time.Hour, time.Minute }},
		{"unlimited reads", func(c *Config) { c.StoreReadRate = -1 }},
		{"unlimited unknown keys", func(c *Config) { c.UnknownKeyRate = -1 }},
		{"per client", func(c *Config) { c.UnknownKeyPer = PerClient }},
		{"tiny sizes", func(c *Config) { c.CacheSize, c.NegativeCacheSize, c.StoreReadBurst = 1, 1, 1 }},
		{"smallest requests", func(c *Config) { c.MaxRequestBytes = 16 << 10 }},
		{"largest requests", func(c *Config) { c.MaxRequestBytes = 16 << 20 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
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
		wantField []string
	}{
		{"upper-case prefix", func(c *Config) { c.KeyPrefix = "KG" }, []string{"key-prefix"}},
		{"prefix with underscore", func(c *Config) { c.KeyPrefix = "k_g" }, []string{"key-prefix"}},
		{"prefix too long", func(c *Config) { c.KeyPrefix = "abcdefghijk" }, []string{"key-prefix"}},
		{"prefix starts with digit", func(c *Config) { c.KeyPrefix = "1kg" }, []string{"key-prefix"}},
		{"upper-case key header", func(c *Config) { c.KeyHeader = "X-Api-Key" }, []string{"key-header"}},
		{"upper-case auth header", func(c *Config) { c.AuthHeader = "Authorization" }, []string{"auth-header"}},
		{"header with space", func(c *Config) { c.KeyHeader = "x api key" }, []string{"key-header"}},
		{"pseudo-header", func(c *Config) { c.KeyHeader = ":path" }, []string{"key-header"}},
		{"header with CRLF", func(c *Config) { c.AuthHeader = "x-auth\r\n" }, []string{"auth-header"}},
		{"same key and auth header", func(c *Config) { c.KeyHeader, c.AuthHeader = "x-key", "x-key" }, []string{"must differ"}},
		{"auth header equals default key header", func(c *Config) { c.AuthHeader = "x-api-key" }, []string{"must differ"}},
		{"x-keygate key header", func(c *Config) { c.KeyHeader = "x-keygate-key" }, []string{"key-header"}},
		{"x-keygate auth header", func(c *Config) { c.AuthHeader = "x-keygate-auth" }, []string{"auth-header"}},
		{"negative found TTL", func(c *Config) { c.FoundTTL = -time.Second }, []string{"found-ttl"}},
		{"zero found TTL", func(c *Config) { c.FoundTTL = 0 }, []string{"found-ttl"}},
		{"negative not-found TTL", func(c *Config) { c.NotFoundTTL = -1 }, []string{"not-found-ttl"}},
		{"negative stale TTL", func(c *Config) { c.StaleTTL = -1 }, []string{"stale-ttl"}},
		{"negative max record age", func(c *Config) { c.MaxRecordAge = -time.Minute }, []string{"max-record-age"}},
		{"negative lookup timeout", func(c *Config) { c.LookupTimeout = -time.Millisecond }, []string{"lookup-timeout"}},
		{"negative cache size", func(c *Config) { c.CacheSize = -1 }, []string{"cache-size"}},
		{"negative negative-cache size", func(c *Config) { c.NegativeCacheSize = -5 }, []string{"negative-cache-size"}},
		{"negative burst", func(c *Config) { c.StoreReadBurst = -1 }, []string{"store-read-burst"}},
		{"zero unknown-key burst", func(c *Config) { c.UnknownKeyBurst = 0 }, []string{"unknown-key-burst"}},
		{"zero read rate is not unlimited", func(c *Config) { c.StoreReadRate = 0 }, []string{"store-read-rate"}},
		{"NaN unknown-key rate", func(c *Config) { c.UnknownKeyRate = math.NaN() }, []string{"unknown-key-rate"}},
		{"unknown caller key", func(c *Config) { c.UnknownKeyPer = "ip" }, []string{"unknown-key-per"}},
		{"small requests", func(c *Config) { c.MaxRequestBytes = 1000 }, []string{"max-request-bytes"}},
		{"a byte under 16 KiB", func(c *Config) { c.MaxRequestBytes = 16<<10 - 1 }, []string{"max-request-bytes"}},
		{"a byte over 16 MiB", func(c *Config) { c.MaxRequestBytes = 16<<20 + 1 }, []string{"max-request-bytes"}},
		{"strip headers", func(c *Config) { c.StripHeaders = []string{"x-plan", "X-Tier", "host"} }, []string{"strip-headers[1]", "strip-headers[2]"}},
		{"proxy with host bits", func(c *Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), {}}
		}, []string{"trusted-proxies[0]", "trusted-proxies[1]"}},
		{"no clock", func(c *Config) { c.Now = nil }, []string{"now"}},
		{"zero config", func(c *Config) { *c = Config{} }, []string{"key-prefix", "key-header", "auth-header", "found-ttl",
			"cache-size", "store-read-burst", "store-read-rate", "unknown-key-per", "max-request-bytes", "now"}},
		{"many problems at once", func(c *Config) {
			c.KeyPrefix, c.KeyHeader, c.AuthHeader = "BAD", "X-Key", "x-keygate-auth"
			c.FoundTTL, c.NotFoundTTL, c.CacheSize = -1, -1, -1
		}, []string{"key-prefix", "key-header", "auth-header", "found-ttl", "not-found-ttl", "cache-size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			before := c
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted a bad config")
			}
			for _, f := range tc.wantField {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error does not name %q:\n%v", f, err)
				}
			}
			for _, e := range field.Split(err) {
				var fe *field.Error
				if !errors.As(e, &fe) {
					t.Errorf("%v: not a *field.Error, so the CLI cannot name the flag", e)
				}
			}
			if c.FoundTTL != before.FoundTTL || c.StaleTTL != before.StaleTTL || c.KeyPrefix != before.KeyPrefix {
				t.Error("Validate changed the config")
			}
			if _, err := NewServer(c, newFakeStore(), testHasher, discardLogger); err == nil {
				t.Error("NewServer accepted a bad config")
			}
		})
	}
}

// CallerKey reads the --unknown-key-per values and refuses others.
func TestCallerKeyText(t *testing.T) {
	var k CallerKey
	if err := k.UnmarshalText([]byte("client")); err != nil || k != PerClient || k.String() != "client" {
		t.Errorf("client: %v %q", err, k)
	}
	if err := k.UnmarshalText([]byte("ip")); err == nil || k != PerClient {
		t.Errorf("ip: accepted, or changed the value: %v %q", err, k)
	}
}
