package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fastEvents are the intervals the e2e tests run `keygate events` with.
var fastEvents = []string{"--journal-poll", "100ms", "--list-interval", "200ms", "--scan-interval", "300ms", "--lease-ttl", "1500ms",
	"--retry-backoff", "50ms", "--retry-max-backoff", "200ms"}

// lifecycle makes every change `keygate keys` can make and checks that
// each sends its event (with the key's data, never the key), one at a
// time. It returns how long the journaled revocation took to reach the
// webhook (from the end of `keys revoke`).
func lifecycle(t *testing.T, env envMap, h *hookReceiver, ring *keyring) time.Duration {
	t.Helper()
	const bound = 10 * time.Second
	k1 := ring.add(createKey(t, env, "--tenant", "acme", "--name", "one", "--scopes", "orders:read"))
	ev := h.wait(t, bound, "key.created", k1.ID)
	if ev.Data.KeyID != k1.ID || ev.Data.Tenant != "acme" || ev.Data.Name != "one" || ev.Data.Status != "active" || len(ev.Data.Scopes) != 1 {
		t.Errorf("key.created data: %+v", ev.Data)
	}

	mustCLI(t, env, "keys", "update", k1.ID, "--name", "renamed")
	if ev := h.wait(t, bound, "key.updated", k1.ID); ev.Data.Name != "renamed" {
		t.Errorf("key.updated name %q, want the new one", ev.Data.Name)
	}

	var rot created
	if err := json.Unmarshal([]byte(mustCLI(t, env, "keys", "rotate", k1.ID, "--grace", "1h", "--json")), &rot); err != nil || rot.ID == "" {
		t.Fatalf("keys rotate --json: %v", err)
	}
	ring.add(rot)
	if ev := h.wait(t, bound, "key.rotated", k1.ID); ev.Data.RotatedTo != rot.ID || ev.Data.ExpiresAt == "" {
		t.Errorf("key.rotated: rotated_to %q expires_at %q, want %s and the grace's end", ev.Data.RotatedTo, ev.Data.ExpiresAt, rot.ID)
	}
	h.wait(t, bound, "key.created", rot.ID)

	start := time.Now()
	mustCLI(t, env, "keys", "revoke", rot.ID)
	revoked := h.wait(t, bound, "key.revoked", rot.ID)
	latency := revoked.at.Sub(start)
	if revoked.Data.Status != "revoked" {
		t.Errorf("key.revoked status %q", revoked.Data.Status)
	}

	k3 := ring.add(createKey(t, env, "--tenant", "acme"))
	h.wait(t, bound, "key.created", k3.ID)
	mustCLI(t, env, "keys", "revoke", k3.ID, "--reason", "leaked")
	if ev := h.wait(t, bound, "key.leaked", k3.ID); ev.Data.RevokedReason != "leaked" {
		t.Errorf("key.leaked reason %q", ev.Data.RevokedReason)
	}
	mustCLI(t, env, "keys", "delete", k3.ID)
	h.wait(t, bound, "key.deleted", k3.ID)

	k4 := ring.add(createKey(t, env, "--tenant", "acme", "--expires-in", "2s"))
	h.wait(t, bound, "key.created", k4.ID)
	if ev := h.wait(t, bound, "key.expired", k4.ID); ev.Data.Status != "expired" {
		t.Errorf("key.expired status %q", ev.Data.Status)
	}
	return latency
}

// checkDelivered: every event once (ids unique), and no raw key in any body.
func checkDelivered(t *testing.T, h *hookReceiver, ring *keyring) {
	t.Helper()
	seen := map[string]bool{}
	for _, ev := range h.got() {
		if seen[ev.ID] {
			t.Errorf("event %s (%s %s) delivered twice", ev.ID, ev.Type, ev.Subject)
		}
		seen[ev.ID] = true
	}
	bodies := h.allBodies()
	for _, k := range ring.all() {
		if strings.Contains(bodies, k) {
			t.Error("an event body holds a raw key")
		}
	}
	if keyShape.MatchString(bodies) {
		t.Error("an event body holds something shaped like a raw key")
	}
}

// TestEventsFileStore: every change-driven event type and key.expired,
// from real `keygate keys` commands on a real file store, reach a real
// receiver signed; a key that existed before the first sender sends nothing.
func TestEventsFileStore(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	before := ring.add(createKey(t, env, "--tenant", "acme"))
	h := newHookReceiver(t)
	p := startEvents(t, env, ring.all, append(h.args(), fastEvents...)...)
	eventually(t, 10*time.Second, "the lease", p.leading)
	took := lifecycle(t, env, h, &ring)
	t.Logf("file store: revoke → webhook %s (--journal-poll 100ms)", took.Round(time.Millisecond))
	for _, ev := range h.got() {
		if ev.Subject == before.ID {
			t.Errorf("%s about a key that existed before events started", ev.Type)
		}
	}
	checkDelivered(t, h, &ring)
}

// TestEventsVault: the same on the real Vault dev server, where changes come
// from the change journal and new keys from listing.
func TestEventsVault(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	h := newHookReceiver(t)
	p := startEvents(t, env, ring.all, append(h.args(), fastEvents...)...)
	eventually(t, 10*time.Second, "the lease", p.leading)
	took := lifecycle(t, env, h, &ring)
	t.Logf("Vault: journaled revoke → webhook %s (--journal-poll 100ms)", took.Round(time.Millisecond))
	checkDelivered(t, h, &ring)
}
