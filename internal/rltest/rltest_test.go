package rltest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStartAndRestart: Redis and the service start on loopback and become
// healthy with the shipped config; both come back after a kill.
func TestStartAndRestart(t *testing.T) {
	start := time.Now()
	redis := StartRedis(t)
	svc := Start(t, redis, Options{})
	t.Logf("redis and the ratelimit service ready in %s", time.Since(start).Round(time.Millisecond))
	for _, addr := range []string{redis.Addr, svc.GRPCAddr, svc.HTTPAddr, svc.DebugAddr} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s is not on loopback", addr)
		}
	}
	if got := svc.LoadedConfig(t); !strings.Contains(got, "keygate.key_id: unit=SECOND") {
		t.Errorf("/rlconfig:\n%s", got)
	}
	redis.Restart(t)
	if err := ping(redis.Addr); err != nil {
		t.Errorf("redis after restart: %v", err)
	}
	svc.Restart(t)
	if got := svc.LoadedConfig(t); !strings.Contains(got, "keygate.key_quota:") {
		t.Errorf("/rlconfig after restart:\n%s", got)
	}
}

// TestLoadReportsConfigError: a config the service refuses is an error
// with its own words, not a hang or a healthy service.
func TestLoadReportsConfigError(t *testing.T) {
	redis := StartRedis(t)
	_, err := Load(t, redis, Options{Config: []byte("domain: keygate\ndescriptors:\n  - key: a\n    rate_limit: {unit: FORTNIGHT, requests_per_unit: 1}\n")})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "FORTNIGHT") {
		t.Errorf("Load: %v, want ErrConfig naming the unit", err)
	}
}
