package envoy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	ratelimitsvcv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"sigs.k8s.io/yaml"
)

const rlsConfigFile = "ratelimit-service.yaml"

// rlsConfig mirrors the config file schema of envoyproxy/ratelimit
// (src/config/config_impl.go: YamlRoot, YamlDescriptor, YamlRateLimit).
type rlsConfig struct {
	Domain      string          `json:"domain"`
	Descriptors []rlsDescriptor `json:"descriptors"`
}

type rlsDescriptor struct {
	Key            string          `json:"key"`
	Value          string          `json:"value,omitempty"`
	RateLimit      *rlsLimit       `json:"rate_limit,omitempty"`
	Descriptors    []rlsDescriptor `json:"descriptors,omitempty"`
	ShadowMode     bool            `json:"shadow_mode,omitempty"`
	DetailedMetric bool            `json:"detailed_metric,omitempty"`
}

type rlsLimit struct {
	Unit            string `json:"unit,omitempty"`
	RequestsPerUnit uint32 `json:"requests_per_unit,omitempty"`
	Unlimited       bool   `json:"unlimited,omitempty"`
	Name            string `json:"name,omitempty"`
	Replaces        []struct {
		Name string `json:"name"`
	} `json:"replaces,omitempty"`
}

// rlsKeys are the only keys the service accepts, at any level. Go's JSON
// decoder matches field names case-insensitively; the service does not.
var rlsKeys = []string{"domain", "key", "value", "descriptors", "rate_limit", "unit",
	"requests_per_unit", "unlimited", "shadow_mode", "name", "replaces", "detailed_metric"}

// loadRLS decodes a rate limit service config strictly and applies the
// checks the service makes when it loads one.
func loadRLS(doc []byte) (*rlsConfig, error) {
	var c rlsConfig
	if err := yaml.UnmarshalStrict(doc, &c); err != nil {
		return nil, err
	}
	var raw any
	if err := yaml.Unmarshal(doc, &raw); err != nil {
		return nil, err
	}
	if err := checkRLSKeys(raw); err != nil {
		return nil, err
	}
	if c.Domain == "" {
		return nil, errors.New("empty domain")
	}
	if err := checkRLSDescriptors(c.Descriptors, c.Domain); err != nil {
		return nil, err
	}
	return &c, nil
}

func checkRLSKeys(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !slices.Contains(rlsKeys, k) {
				return fmt.Errorf("unknown key %q", k)
			}
			if err := checkRLSKeys(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := checkRLSKeys(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRLSDescriptors makes the service's load-time checks on one level of
// descriptors: a key on each, each key/value once, a known unit unless
// unlimited (and then none).
func checkRLSDescriptors(ds []rlsDescriptor, parent string) error {
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Key == "" {
			return fmt.Errorf("%s: descriptor has empty key", parent)
		}
		full := d.Key
		if d.Value != "" {
			full += "_" + d.Value
		}
		if seen[full] {
			return fmt.Errorf("%s: duplicate descriptor %s", parent, full)
		}
		seen[full] = true
		if l := d.RateLimit; l != nil {
			unit, ok := ratelimitsvcv3.RateLimitResponse_RateLimit_Unit_value[strings.ToUpper(l.Unit)]
			valid := ok && unit != int32(ratelimitsvcv3.RateLimitResponse_RateLimit_UNKNOWN)
			switch {
			case l.Unlimited && valid:
				return fmt.Errorf("%s.%s: unit set on an unlimited limit", parent, full)
			case !l.Unlimited && !valid:
				return fmt.Errorf("%s.%s: invalid rate limit unit %q", parent, full, l.Unit)
			}
		}
		if err := checkRLSDescriptors(d.Descriptors, parent+"."+full); err != nil {
			return err
		}
	}
	return nil
}

// rlsDefault returns the top-level descriptor for key that has no value,
// the one the service uses for every value of key without its own entry.
func (c *rlsConfig) rlsDefault(key string) (*rlsDescriptor, error) {
	for i, d := range c.Descriptors {
		if d.Key == key && d.Value == "" {
			return &c.Descriptors[i], nil
		}
	}
	return nil, fmt.Errorf("%s has no top-level descriptor %q without a value", rlsConfigFile, key)
}

// checkRLSPolicy returns how c fails keygate's needs: a default limit for
// each descriptor key Envoy sends, enforced, not shadowed.
func checkRLSPolicy(c *rlsConfig) error {
	for _, key := range []string{descKeyID, descQuota} {
		d, err := c.rlsDefault(key)
		if err != nil {
			return err
		}
		if l := d.RateLimit; l == nil || l.Unlimited || l.RequestsPerUnit == 0 {
			return fmt.Errorf("descriptor %s: want a default limit of at least 1 request per unit, got %+v", key, l)
		}
		if d.ShadowMode {
			return fmt.Errorf("descriptor %s: shadow_mode on, limits are not enforced", key)
		}
	}
	return nil
}

func readRLS(t *testing.T) *rlsConfig {
	t.Helper()
	c, err := loadRLS(readFile(t, rlsConfigFile))
	if err != nil {
		t.Fatalf("%s: %v", rlsConfigFile, err)
	}
	return c
}

func TestRateLimitServiceConfig(t *testing.T) {
	if err := checkRLSPolicy(readRLS(t)); err != nil {
		t.Error(err)
	}
}

func TestBrokenRateLimitServiceConfigIsRejected(t *testing.T) {
	doc := string(readFile(t, rlsConfigFile))
	for _, tc := range []edit{
		{"unknown field", "requests_per_unit: 50", "requests_per_unit: 50\n      burst: 10", "burst"},
		{"field in wrong case", "requests_per_unit: 50", "Requests_Per_Unit: 50", "Requests_Per_Unit"},
		{"bad unit", "unit: SECOND", "unit: FORTNIGHT", "FORTNIGHT"},
		{"unlimited with unit", "requests_per_unit: 50", "requests_per_unit: 50\n      unlimited: true", "unit set on an unlimited"},
		{"no domain", "domain: keygate", "domain: ''", "empty domain"},
		{"duplicate key", "- key: key_quota", "- key: key_id", "duplicate descriptor key_id"},
		{"quota key renamed", "- key: key_quota", "- key: quota", `"key_quota"`},
		{"shadow mode", "  - key: key_id\n", "  - key: key_id\n    shadow_mode: true\n", "shadow_mode on"},
		{"zero limit", "requests_per_unit: 50", "requests_per_unit: 0", "at least 1"},
		{"string count", "requests_per_unit: 50", "requests_per_unit: lots", "requests_per_unit of type uint32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := strings.Count(doc, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, rlsConfigFile)
			}
			c, err := loadRLS([]byte(strings.Replace(doc, tc.old, tc.new, 1)))
			if err == nil {
				err = checkRLSPolicy(c)
			}
			wantRejected(t, err, tc.wantErr)
		})
	}
}
