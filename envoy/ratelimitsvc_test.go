package envoy

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/rltest"
)

const rlsConfigFile = "ratelimit-service.yaml"

// rlsConfig is what the real envoyproxy/ratelimit service loaded from a
// config file, as its debug endpoint GET /rlconfig prints it: its domain
// and every limit by full key ("keygate.key_id", or "keygate.key_id_<value>"
// for an entry with a value, "parent.child" below).
type rlsConfig struct {
	Domain string
	Limits map[string]rlsLimit
}

type rlsLimit struct {
	Unit            string
	RequestsPerUnit int
	ShadowMode      bool
}

// rlsLine is one /rlconfig line (src/config/config_impl.go, dump).
var rlsLine = regexp.MustCompile(`^([^:]+): unit=([A-Z]+) requests_per_unit=(\d+), shadow_mode: (true|false), quota_mode: (true|false)$`)

// loadRLS has the real service load doc, and returns what it loaded, or
// the service's own complaint about doc. One Redis serves a test's loads.
func loadRLS(t *testing.T, redis *rltest.Redis, doc []byte) (*rlsConfig, error) {
	t.Helper()
	svc, err := rltest.Load(t, redis, rltest.Options{Config: doc})
	if err != nil {
		if !errors.Is(err, rltest.ErrConfig) {
			t.Fatal(err) // not a verdict on doc
		}
		return nil, err
	}
	defer svc.Kill()
	return parseRLConfig(svc.LoadedConfig(t))
}

func parseRLConfig(dump string) (*rlsConfig, error) {
	c := &rlsConfig{Limits: map[string]rlsLimit{}}
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		m := rlsLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("/rlconfig line %q: not understood", line)
		}
		domain, _, _ := strings.Cut(m[1], ".")
		if c.Domain != "" && c.Domain != domain {
			return nil, fmt.Errorf("/rlconfig shows domains %q and %q", c.Domain, domain)
		}
		n, _ := strconv.Atoi(m[3])
		c.Domain, c.Limits[m[1]] = domain, rlsLimit{Unit: m[2], RequestsPerUnit: n, ShadowMode: m[4] == "true"}
	}
	if c.Domain == "" {
		return nil, errors.New("the service loaded no limits")
	}
	return c, nil
}

// rlsDefault returns the top-level limit for key without a value, the one
// the service uses for every value of key without its own entry.
func (c *rlsConfig) rlsDefault(key string) (rlsLimit, error) {
	l, ok := c.Limits[c.Domain+"."+key]
	if !ok {
		return rlsLimit{}, fmt.Errorf("%s has no top-level descriptor %q without a value", rlsConfigFile, key)
	}
	return l, nil
}

// checkRLSPolicy returns how c fails keygate's needs: a default limit for
// each descriptor key Envoy (and keygate) sends, enforced, not shadowed.
func checkRLSPolicy(c *rlsConfig) error {
	for _, key := range []string{descKeyID, descQuota} {
		l, err := c.rlsDefault(key)
		if err != nil {
			return err
		}
		if l.RequestsPerUnit < 1 {
			return fmt.Errorf("descriptor %s: want a default limit of at least 1 request per unit, got %+v", key, l)
		}
		if l.ShadowMode {
			return fmt.Errorf("descriptor %s: shadow_mode on, limits are not enforced", key)
		}
	}
	return nil
}

func readRLS(t *testing.T, redis *rltest.Redis) *rlsConfig {
	t.Helper()
	c, err := loadRLS(t, redis, readFile(t, rlsConfigFile))
	if err != nil {
		t.Fatalf("%s: %v", rlsConfigFile, err)
	}
	return c
}

// TestRateLimitServiceConfig: the real service loads the shipped file, as
// shipped, and /rlconfig shows keygate's domain with a default limit for
// each descriptor.
func TestRateLimitServiceConfig(t *testing.T) {
	redis := rltest.StartRedis(t)
	c := readRLS(t, redis)
	t.Logf("loaded: %+v", *c)
	if c.Domain != rateLimitDomain {
		t.Errorf("domain %q, want %q", c.Domain, rateLimitDomain)
	}
	if err := checkRLSPolicy(c); err != nil {
		t.Error(err)
	}
}

// TestBrokenRateLimitServiceConfigIsRejected: each broken copy is refused,
// by the service itself (it logs "Error loading new configuration" and
// stays unhealthy without a config) or, for what it accepts but keygate
// cannot use, by checkRLSPolicy.
func TestBrokenRateLimitServiceConfigIsRejected(t *testing.T) {
	redis := rltest.StartRedis(t)
	doc := string(readFile(t, rlsConfigFile))
	for _, tc := range []edit{
		{"unknown field", "requests_per_unit: 50", "requests_per_unit: 50\n      burst: 10", "unknown key 'burst'"},
		{"field in wrong case", "requests_per_unit: 50", "Requests_Per_Unit: 50", "Requests_Per_Unit"},
		{"bad unit", "unit: SECOND", "unit: FORTNIGHT", "FORTNIGHT"},
		{"unlimited with unit", "requests_per_unit: 50", "requests_per_unit: 50\n      unlimited: true", "unlimited"},
		{"no domain", "domain: keygate", "domain: ''", "empty domain"},
		{"duplicate key", "- key: key_quota", "- key: key_id", "duplicate descriptor"},
		{"string count", "requests_per_unit: 50", "requests_per_unit: lots", "lots"},
		{"quota key renamed", "- key: key_quota", "- key: quota", `"key_quota"`},
		{"shadow mode", "  - key: key_id\n", "  - key: key_id\n    shadow_mode: true\n", "shadow_mode on"},
		{"zero limit", "requests_per_unit: 50", "requests_per_unit: 0", "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := strings.Count(doc, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, rlsConfigFile)
			}
			c, err := loadRLS(t, redis, []byte(strings.Replace(doc, tc.old, tc.new, 1)))
			if err == nil {
				err = checkRLSPolicy(c)
			}
			wantRejected(t, err, tc.wantErr)
		})
	}
}
