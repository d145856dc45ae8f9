package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestKeysListFilters(t *testing.T) {
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	soon := createKey(t, env, "--tenant", "acme", "--expires-in", "3d")
	later := createKey(t, env, "--tenant", "acme", "--expires-in", "90d")
	forever := createKey(t, env, "--tenant", "globex")
	revoked := createKey(t, env, "--tenant", "globex", "--expires-in", "1d")
	mustCLI(t, env, "keys", "revoke", revoked.ID)

	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{soon.ID, later.ID, forever.ID, revoked.ID}},
		{[]string{"--tenant", "acme"}, []string{soon.ID, later.ID}},
		{[]string{"--status", "revoked"}, []string{revoked.ID}},
		{[]string{"--status", "active", "--tenant", "globex"}, []string{forever.ID}},
		{[]string{"--expiring-within", "7d"}, []string{soon.ID}}, // the revoked one is not "expiring"
		{[]string{"--no-expiry"}, []string{forever.ID}},
		{[]string{"--status", "expired"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustCLI(t, env, append([]string{"keys", "list", "--json"}, tt.args...)...)
			var rows []listed
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	for _, bad := range [][]string{{"--status", "gone"}, {"--expiring-within", "soon"}, {"--no-expiry", "--expiring-within", "1d"},
		{"--unused-for", "soon"}, {"--unused-for", "90d"}} { // the file store records no use
		if _, _, err := cli(t, env, append([]string{"keys", "list"}, bad...)...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("keys list %v: error %v, want one naming %s", bad, err, bad[0])
		}
	}
}

func TestKeysAudit(t *testing.T) {
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	clean := createKey(t, env, "--tenant", "acme", "--expires-in", "30d", "--cidrs", "10.1.2.0/24")
	forever := createKey(t, env, "--tenant", "acme", "--cidrs", "0.0.0.0/0", "--scopes", "orders:*")
	revoked := createKey(t, env, "--tenant", "acme")
	mustCLI(t, env, "keys", "revoke", revoked.ID)

	var report []audited
	if err := json.Unmarshal([]byte(mustCLI(t, env, "keys", "audit", "--json")), &report); err != nil {
		t.Fatal(err)
	}
	if len(report) != 1 || report[0].ID != forever.ID {
		t.Fatalf("report %+v, want only %s (clean %s and revoked %s have no findings)", report, forever.ID, clean.ID, revoked.ID)
	}
	var codes []string
	for _, f := range report[0].Findings {
		codes = append(codes, f.Code)
	}
	if want := []string{"no_expiry", "wide_cidr", "wildcard_scope"}; !slices.Equal(codes, want) {
		t.Errorf("findings %v, want %v", codes, want)
	}
	if out := mustCLI(t, env, "keys", "audit", "--max-lifetime", "7d"); !strings.Contains(out, clean.ID) || !strings.Contains(out, "long_lived") {
		t.Errorf("with --max-lifetime 7d the 30-day key is long_lived:\n%s", out)
	}
}
