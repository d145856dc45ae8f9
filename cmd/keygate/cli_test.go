package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Bad flags and environment are reported all at once, each naming its flag.
func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  envMap
		args []string
		want []string
	}{
		{"every problem at once", envMap{},
			[]string{"--found-ttl", "-1s", "--key-header", "X-Key", "--store", "bogus", "--key-prefix", "KG"},
			[]string{"found-ttl", "key-header", `--store "bogus"`, "key-prefix"}},
		{"no store", envMap{}, nil, []string{"no key store"}},
		{"bad env value names the variable", envMap{"KEYGATE_FOUND_TTL": "soon", "KEYGATE_CACHE_SIZE": "many"},
			[]string{"--store", "file:/nonexistent/keys.yaml"}, []string{"KEYGATE_FOUND_TTL", "KEYGATE_CACHE_SIZE"}},
		{"missing file store", envMap{}, []string{"--store", "file:/nonexistent/keys.yaml"}, []string{"/nonexistent/keys.yaml"}},
		{"routes file errors name the field", envMap{"KEYGATE_STORE": "file:/nonexistent/k.yaml"},
			[]string{"--routes-file", writeFile(t, "routes.yaml", "routes:\n  - path_prefix: orders\n    scopez: [a]\n")},
			[]string{"--routes-file", "scopez"}},
		{"vault without token", envMap{"VAULT_ADDR": "http://127.0.0.1:1"}, nil, []string{"token"}},
		{"bad listen addresses", envMap{"KEYGATE_STORE": "file:" + writeFile(t, "k.yaml", "keys: {}\n")},
			[]string{"--http-addr", "127.0.0.1:notaport"}, []string{"--http-addr"}},
		{"negative usage interval", envMap{}, []string{"--usage-interval", "-1h"}, []string{"--usage-interval"}},
		{"plain text off loopback needs --plaintext", envMap{}, []string{"--grpc-addr", "0.0.0.0:0", "--http-addr", ":0"},
			[]string{"--grpc-addr: 0.0.0.0:0 is not a loopback address", "--http-addr: :0 is not a loopback address"}},
		{"TLS flags", envMap{}, []string{"--tls-cert", "c.pem", "--tls-allowed-peers", "spiffe://a/*/b"},
			[]string{"--tls-cert and --tls-key", "--tls-allowed-peers: needs --tls-client-ca", `--tls-allowed-peers[0]: "spiffe://a/*/b"`}},
		{"gRPC limits", envMap{}, []string{"--max-request-bytes", "1000", "--grpc-max-streams", "0", "--grpc-max-connection-age", "10s",
			"--grpc-keepalive-min-time", "1ms"}, []string{"--max-request-bytes", "--grpc-max-streams", "--grpc-max-connection-age", "--grpc-keepalive-min-time"}},
		{"every unparsable flag at once", envMap{}, []string{"--found-ttl", "soon", "--cache-size", "many", "--unknown-key-per", "ip"},
			[]string{`--found-ttl: time: invalid duration "soon"`, `--cache-size: strconv.ParseInt: parsing "many"`, `--unknown-key-per: "ip": want peer or client`}},
		{"a variable's bad value is named by the variable", envMap{"KEYGATE_FOUND_TTL": "-1s", "KEYGATE_TRUSTED_PROXIES": "10.0.0.0/8,nope",
			"KEYGATE_STALE_TTL": "-1m", "KEYGATE_STORE_READ_RATE": "0"}, nil,
			[]string{"KEYGATE_FOUND_TTL: must be > 0", `KEYGATE_TRUSTED_PROXIES[1]: "nope"`, "KEYGATE_STALE_TTL: must be >= 0 (0 disables)",
				"KEYGATE_STORE_READ_RATE: must be > 0, or negative for unlimited"}},
		{"store settings from variables are named by the variable", envMap{"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t",
			"KEYGATE_VAULT_AUTH": "bogus"}, nil, []string{"KEYGATE_VAULT_AUTH: "}},
		{"a bad store variable", envMap{"KEYGATE_STORE": "bogus"}, nil, []string{`KEYGATE_STORE "bogus": want`}},
		{"the deprecated name is named when it was used", envMap{}, []string{"--grpc-max-message-bytes", "1000"},
			[]string{"--grpc-max-message-bytes: must be between 16 KiB"}},
		{"forwarding and stripping", envMap{}, []string{"--trusted-proxies", "10.0.0.0/8,10.1.2.3/8,nope", "--unknown-key-per", "ip",
			"--strip-headers", "x-plan,X-Tier,host"},
			[]string{`--trusted-proxies[1]: "10.1.2.3/8" has host bits set`, `--trusted-proxies[2]: "nope"`, `--unknown-key-per: "ip"`,
				`strip-headers[1]: "X-Tier"`, `strip-headers[2]: "host"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cli(t, tt.env, append([]string{"serve", "--grpc-addr", "127.0.0.1:0"}, tt.args...)...)
			if err == nil {
				t.Fatal("serve started with a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := writeFileBytes(path, []byte(content)); err != nil {
		t.Fatal(err)
	}
	return path
}

// The key CLI against both stores: JSON shapes scripts rely on, clear errors,
// nothing half-written, and no raw key in anything but create's own output.
func TestKeysCLI(t *testing.T) {
	stores := map[string]func(t *testing.T) envMap{
		"file":  func(t *testing.T) envMap { return envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"} },
		"vault": vaultEnv,
	}
	for name, mkEnv := range stores {
		t.Run(name, func(t *testing.T) {
			env := mkEnv(t)
			k := createKey(t, env, "--tenant", "acme", "--scopes", "a,b", "--header", "x-plan=gold", "--metadata", "ticket=SEC-1")

			var shown struct {
				ID     string `json:"id"`
				Record struct {
					Tenant  string            `json:"tenant"`
					Scopes  []string          `json:"scopes"`
					Headers map[string]string `json:"headers"`
					Hash    string            `json:"hash"`
				} `json:"record"`
			}
			out := mustCLI(t, env, "keys", "show", k.ID, "--json")
			if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.ID != k.ID || shown.Record.Tenant != "acme" ||
				len(shown.Record.Scopes) != 2 || shown.Record.Headers["x-plan"] != "gold" || !strings.HasPrefix(shown.Record.Hash, "sha256:") {
				t.Errorf("keys show --json: %v %+v", err, shown)
			}
			mustCLI(t, env, "keys", "update", k.ID, "--scopes", "c", "--remove-header", "x-plan", "--expires-in", "30d")
			out = mustCLI(t, env, "keys", "show", k.ID, "--json")
			if !strings.Contains(out, `"scopes":["c"]`) || strings.Contains(out, "x-plan") || !strings.Contains(out, "expires_at") {
				t.Errorf("after update: %s", out)
			}
			if out := mustCLI(t, env, "keys", "list"); !strings.Contains(out, k.ID) || !strings.Contains(out, "acme") {
				t.Errorf("keys list lacks the key:\n%s", out)
			}
			var rows []listed
			if err := json.Unmarshal([]byte(mustCLI(t, env, "keys", "list", "--json")), &rows); err != nil || len(rows) != 1 {
				t.Errorf("keys list --json: %v, %d rows", err, len(rows))
			}

			errCases := []struct {
				args []string
				want string
			}{
				{[]string{"keys", "create"}, `"tenant": required`},
				{[]string{"keys", "create", "--tenant", "a", "--cidrs", "10.0.0.0/33", "--header", "host=x", "--expires-in", "soon"}, "allowed_cidrs[0]"},
				{[]string{"keys", "create", "--tenant", "a", "--header", "novalue"}, "--header"},
				{[]string{"keys", "show", "nope"}, "not a key id"},
				{[]string{"keys", "show", k.Key}, "not a key id"},
				{[]string{"keys", "revoke", "AAAAAAAAAAAA"}, "not found"},
				{[]string{"keys", "update", k.ID, "--cidrs", "300.1.1.1"}, "allowed_cidrs[0]"},
				{[]string{"keys", "rotate", "AAAAAAAAAAAA"}, "not found"},
			}
			for _, c := range errCases {
				stdout, stderr, err := cli(t, env, c.args...)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("keygate %s: error %v, want it to mention %q", strings.Join(c.args[:2], " "), err, c.want)
				}
				if err != nil && strings.Contains(err.Error()+stdout+stderr, k.Key) {
					t.Errorf("keygate %s: a raw key appears in the output or error", strings.Join(c.args[:2], " "))
				}
			}
			// Nothing half-written: failed creates and updates left one key, unchanged.
			if err := json.Unmarshal([]byte(mustCLI(t, env, "keys", "list", "--json")), &rows); err != nil || len(rows) != 1 {
				t.Errorf("after failed commands: %v, %d keys, want 1", err, len(rows))
			}
			if out := mustCLI(t, env, "keys", "show", k.ID, "--json"); !strings.Contains(out, `"scopes":["c"]`) {
				t.Errorf("a failed update changed the record: %s", out)
			}
			if _, _, err := cli(t, env, "keys", "delete", k.ID); err == nil || !strings.Contains(err.Error(), "is active: revoke it first") {
				t.Errorf("delete of an active key without --force: %v", err)
			}
			mustCLI(t, env, "keys", "revoke", k.ID)
			if _, _, err := cli(t, env, "keys", "rotate", k.ID); err == nil || !strings.Contains(err.Error(), "revoked") {
				t.Errorf("rotate of a revoked key: %v", err)
			}
			checkDelete(t, env, k.ID)
		})
	}
}

// checkDelete deletes a revoked key: it is gone from show and list, a
// second delete says not found, and --force deletes an active key.
func checkDelete(t *testing.T, env envMap, revokedID string) {
	t.Helper()
	if out := mustCLI(t, env, "keys", "delete", revokedID); !strings.Contains(out, "Key "+revokedID+" deleted") {
		t.Errorf("keys delete: %q", out)
	}
	if _, _, err := cli(t, env, "keys", "show", revokedID); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show after delete: %v, want not found", err)
	}
	if _, _, err := cli(t, env, "keys", "delete", revokedID); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("second delete: %v, want not found", err)
	}
	active := createKey(t, env, "--tenant", "acme")
	mustCLI(t, env, "keys", "delete", active.ID, "--force")
	var rows []listed
	if err := json.Unmarshal([]byte(mustCLI(t, env, "keys", "list", "--json")), &rows); err != nil || len(rows) != 0 {
		t.Errorf("keys list after deleting every key: %v, %v; want no rows", err, rows)
	}
	if _, _, err := cli(t, env, "keys", "delete", active.Key); err == nil || strings.Contains(err.Error(), active.Key) {
		t.Errorf("delete with a raw key: %v; want an error that does not echo it", redact(fmt.Sprint(err)))
	}
}
