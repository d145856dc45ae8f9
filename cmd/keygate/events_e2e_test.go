package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keygate/keygate/internal/vaulttest"
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
	p := startEvents(t, env, ring.all, append(h.args(), append(fastEvents, "--metrics-addr", "127.0.0.1:0")...)...)
	eventually(t, 10*time.Second, "the lease", p.leading)
	took := lifecycle(t, env, h, &ring)
	t.Logf("Vault: journaled revoke → webhook %s (--journal-poll 100ms)", took.Round(time.Millisecond))
	checkDelivered(t, h, &ring)

	m := metricsAddrRE.FindStringSubmatch(p.logs.String())
	if m == nil {
		t.Fatal("no metrics address in the logs")
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"keygate_events_leader 1", `keygate_events_delivered_total{type="key.revoked",webhook="0"} 1`,
		`keygate_events_delivered_total{type="key.leaked",webhook="0"} 1`, `keygate_events_queue_length{webhook="0"} 0`,
		`keygate_events_dead_letter_total{reason="queue_full",webhook="0"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), h.srv.URL) || strings.Contains(string(body), "127.0.0.1:") {
		t.Error("/metrics names the webhook URL")
	}
}

var metricsAddrRE = regexp.MustCompile(`"msg":"events metrics listening","metrics_addr":"([^"]+)"`)

// eventsToken is a token holding only the shipped keygate-events policy,
// its paths moved to the test's base path.
func eventsToken(t *testing.T, base string) string {
	t.Helper()
	client := vaulttest.Server(t).Client(t)
	text, err := os.ReadFile("../../vault/policies/keygate-events.hcl")
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.NewReplacer("secret/data/keygate/", "secret/data/"+base+"/", "secret/metadata/keygate/", "secret/metadata/"+base+"/").Replace(string(text))
	name := "events-" + base
	if err := client.Sys().PutPolicy(name, rules); err != nil {
		t.Fatal(err)
	}
	sec, err := client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{name}, TTL: "1h"})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("create an events token: %v", err)
	}
	return sec.Auth.ClientToken
}

// TestEventsReplicas: three `keygate events` on one Vault, each with a token
// of the shipped keygate-events policy: one sends, each event arrives once.
// When the sender loses Vault (its token revoked: it can neither renew nor
// release the lease), it stops sending and another replica takes over
// once the lease expires; when that one is stopped, it releases the lease
// and the third takes over at once. Repeats across a failover carry the
// same id.
func TestEventsReplicas(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	base := env["KEYGATE_VAULT_BASE_PATH"]
	h := newHookReceiver(t)
	const ttl = 1500 * time.Millisecond
	procs := make([]*eventsProc, 3)
	tokens := make([]string, 3)
	for i := range procs {
		tokens[i] = eventsToken(t, base)
		penv := envMap{"VAULT_ADDR": env["VAULT_ADDR"], "VAULT_TOKEN": tokens[i], "KEYGATE_VAULT_BASE_PATH": base}
		procs[i] = startEvents(t, penv, ring.all, append(h.args(), fastEvents...)...)
	}
	leader := func() int {
		n, at := 0, -1
		for i, p := range procs {
			if p.leading() {
				n, at = n+1, i
			}
		}
		if n > 1 {
			t.Fatalf("%d replicas hold the lease at once", n)
		}
		return at
	}
	eventually(t, 10*time.Second, "one sender", func() bool { return leader() >= 0 })
	first := leader()

	k1 := ring.add(createKey(t, env, "--tenant", "acme"))
	k2 := ring.add(createKey(t, env, "--tenant", "acme"))
	mustCLI(t, env, "keys", "revoke", k1.ID)
	h.wait(t, 10*time.Second, "key.created", k2.ID)
	h.wait(t, 10*time.Second, "key.revoked", k1.ID)
	time.Sleep(500 * time.Millisecond) // anything sent twice would be here by now
	checkDelivered(t, h, &ring)

	// The sender loses Vault.
	client := vaulttest.Server(t).Client(t)
	if err := client.Auth().Token().RevokeOrphan(tokens[first]); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 3*ttl, "another replica sending", func() bool { l := leader(); return l >= 0 && l != first })
	if took > ttl+ttl/3+500*time.Millisecond {
		t.Errorf("failover took %s, want within the lease ttl %s (+ one campaign interval)", took, ttl)
	}
	second := leader()
	t.Logf("failover after the sender lost Vault: %s (--lease-ttl %s)", took.Round(time.Millisecond), ttl)
	if !strings.Contains(procs[first].logs.String(), "stopped sending events") {
		t.Errorf("the replica that lost Vault does not say it stopped sending")
	}

	mustCLI(t, env, "keys", "revoke", k2.ID)
	h.wait(t, 10*time.Second, "key.revoked", k2.ID)

	// A graceful stop releases the lease: the third takes over at once.
	procs[second].stop(t)
	took = eventually(t, 3*ttl, "the third replica sending", func() bool { l := leader(); return l >= 0 && l != first && l != second })
	t.Logf("failover after a graceful stop: %s", took.Round(time.Millisecond))
	k3 := ring.add(createKey(t, env, "--tenant", "acme"))
	h.wait(t, 10*time.Second, "key.created", k3.ID)

	// Each fact has one id; a fact delivered twice (across a failover)
	// came with that id.
	ids := map[string]string{}
	dups := 0
	seen := map[string]bool{}
	for _, ev := range h.got() {
		fact := ev.Type + " " + ev.Subject
		if id, ok := ids[fact]; ok && id != ev.ID {
			t.Errorf("%s sent with two ids", fact)
		}
		ids[fact] = ev.ID
		if seen[ev.ID] {
			dups++
		}
		seen[ev.ID] = true
	}
	t.Logf("%d events, %d repeated (same id) across the failovers", len(h.got()), dups)
}

// TestEventsAutoDisable: with --auto-disable-unused, a key never used sends
// key.unused after --unused-for, and is revoked (reason "unused") after the
// grace, which the journal then reports as key.revoked.
func TestEventsAutoDisable(t *testing.T) {
	var ring keyring
	env := vaultEnv(t)
	h := newHookReceiver(t)
	p := startEvents(t, env, ring.all, append(h.args(), append(fastEvents, "--unused-for", "2s", "--auto-disable-unused", "--auto-disable-grace", "1s")...)...)
	eventually(t, 10*time.Second, "the lease", p.leading)
	k := ring.add(createKey(t, env, "--tenant", "acme"))
	unused := h.wait(t, 10*time.Second, "key.unused", k.ID)
	revoked := h.wait(t, 10*time.Second, "key.revoked", k.ID)
	if revoked.Data.RevokedReason != "unused" || revoked.Data.Status != "revoked" {
		t.Errorf("auto-disabled key: %+v", revoked.Data)
	}
	if gap := revoked.at.Sub(unused.at); gap < 900*time.Millisecond {
		t.Errorf("revoked %s after key.unused, want at least the 1s grace", gap)
	}
	out := mustCLI(t, env, "keys", "show", k.ID, "--json")
	if !strings.Contains(out, `"revoked_reason":"unused"`) && !strings.Contains(out, `"revoked_reason": "unused"`) {
		t.Errorf("keys show after auto-disable:\n%s", redact(out))
	}
	checkDelivered(t, h, &ring)
}
