package envoy

import (
	"strings"
	"testing"
)

// A textMutant replaces old, which must occur once in the file, with new;
// the named invariant must then fail mentioning wantErr ("" for a harmless
// edit it must accept).
type textMutant struct {
	invariant, name, old, new, wantErr string
}

var nginxMutants = []textMutant{
	// every proxied location asks keygate first
	{"every proxied location asks keygate first", "auth off", "auth_request /keygate-auth;", "auth_request off;", "auth_request \"off\""},
	{"every proxied location asks keygate first", "public location", "    # keygate's 429 (rate_limited",
		"    location /public/ {\n        proxy_pass http://__UPSTREAM__;\n    }\n\n    # keygate's 429 (rate_limited", "location /public/"},
	{"every proxied location asks keygate first", "case-insensitive bypass", "    # keygate's 429 (rate_limited",
		"    location ~* ^/HEALTHZ$ {\n        proxy_pass http://__UPSTREAM__;\n    }\n\n    # keygate's 429 (rate_limited", "location ~* ^/HEALTHZ$"},
	{"every proxied location asks keygate first", "nested location skips", "        proxy_pass http://__UPSTREAM__;\n    }\n\n    # keygate's 429",
		"        proxy_pass http://__UPSTREAM__;\n        location /v1/ {\n            auth_request off;\n            proxy_pass http://__UPSTREAM__;\n        }\n    }\n\n    # keygate's 429", "location /v1/"},
	{"every proxied location asks keygate first", "keygate error served upstream", "        return 500;\n",
		"        proxy_pass http://__UPSTREAM__;\n", "location @keygate_error"},
	{"every proxied location asks keygate first", "auth location public", "        internal;\n", "", "is not internal"},
	{"every proxied location asks keygate first", "auth location a prefix", "location = /keygate-auth {", "location /keygate-auth {", "no exact location"},
	{"every proxied location asks keygate first", "static answer", "    # keygate's 429 (rate_limited",
		"    location = /robots.txt {\n        return 200 \"\";\n    }\n\n    # keygate's 429 (rate_limited", ""},
	// nginx trusts no client-written address
	{"nginx trusts no client-written address", "real_ip from anyone", "    underscores_in_headers off;\n",
		"    set_real_ip_from 0.0.0.0/0;\n    real_ip_header X-Forwarded-For;\n    underscores_in_headers off;\n", "set_real_ip_from 0.0.0.0/0"},
	{"nginx trusts no client-written address", "real_ip recursive", "    underscores_in_headers off;\n",
		"    real_ip_recursive on;\n    underscores_in_headers off;\n", "real_ip_recursive on"},
	{"nginx trusts no client-written address", "client XFF to keygate", "X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_http_version",
		"X-Forwarded-For $http_x_forwarded_for;\n        proxy_http_version", "want $proxy_add_x_forwarded_for"},
	{"nginx trusts no client-written address", "client XFF upstream", "X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_pass",
		"X-Forwarded-For $http_x_forwarded_for;\n        proxy_pass", "want $proxy_add_x_forwarded_for"},
	{"nginx trusts no client-written address", "no XFF to keygate", "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_http_version",
		"        proxy_http_version", "does not send keygate X-Forwarded-For"},
	// nginx replaces identity, record and credential headers
	{"nginx replaces identity, record and credential headers", "record header passed", "        proxy_set_header X-Plan $keygate_x_plan;\n", "", "no proxy_set_header x-plan"},
	{"nginx replaces identity, record and credential headers", "reason passed", "        proxy_set_header X-Keygate-Reason \"\";\n", "", "no proxy_set_header x-keygate-reason"},
	{"nginx replaces identity, record and credential headers", "tenant from the client", "X-Keygate-Tenant $keygate_tenant;", "X-Keygate-Tenant $http_x_keygate_tenant;", "x-keygate-tenant set to $http_x_keygate_tenant"},
	{"nginx replaces identity, record and credential headers", "constant scopes", "X-Keygate-Scopes $keygate_scopes;", "X-Keygate-Scopes admin;", "x-keygate-scopes set to admin"},
	{"nginx replaces identity, record and credential headers", "answer of another header", "$keygate_scopes $upstream_http_x_keygate_scopes;", "$keygate_scopes $upstream_http_x_keygate_tenant;", "x-keygate-scopes set to $keygate_scopes"},
	{"nginx replaces identity, record and credential headers", "key passed", "        proxy_set_header X-Api-Key \"\";\n", "", "proxy_set_header x-api-key"},
	{"nginx replaces identity, record and credential headers", "bearer passed", "proxy_set_header Authorization \"\";", "proxy_set_header Authorization $http_authorization;", "proxy_set_header authorization"},
	// nginx drops header names with underscores
	{"nginx drops header names with underscores", "underscores on", "underscores_in_headers off;", "underscores_in_headers on;", "want off"},
	{"nginx drops header names with underscores", "invalid headers kept", "ignore_invalid_headers on;", "ignore_invalid_headers off;", "want on"},
}

var caddyMutants = []textMutant{
	// every request passes forward_auth first
	{"every request passes forward_auth first", "forward_auth on one path", "forward_auth {$KEYGATE_HTTP_ADDR", "forward_auth /api/* {$KEYGATE_HTTP_ADDR", "a matcher lets other requests skip keygate"},
	{"every request passes forward_auth first", "handle outside the route", "\troute {\n",
		"\thandle /public/* {\n\t\treverse_proxy {$KEYGATE_UPSTREAM:app:8080}\n\t}\n\n\troute {\n", "is not in a route after an unconditional forward_auth"},
	{"every request passes forward_auth first", "proxy before forward_auth", "\t\trequest_header -*_*\n",
		"\t\trequest_header -*_*\n\t\treverse_proxy /metrics {$KEYGATE_UPSTREAM:app:8080}\n", "reverse_proxy /metrics"},
	{"every request passes forward_auth first", "served on keygate's error", "\t\t\turi /auth\n",
		"\t\t\turi /auth\n\t\t\t@down status 5xx\n\t\t\thandle_response @down {\n\t\t\t\treverse_proxy {$KEYGATE_UPSTREAM:app:8080}\n\t\t\t}\n", "only uri and copy_headers"},
	{"every request passes forward_auth first", "wrong endpoint", "uri /auth", "uri /ext_authz", "want uri /auth"},
	{"every request passes forward_auth first", "errors handled upstream", "\troute {\n",
		"\thandle_errors {\n\t\treverse_proxy {$KEYGATE_UPSTREAM:app:8080}\n\t}\n\n\troute {\n", "is not in a route after"},
	{"every request passes forward_auth first", "compressed answers", "\t\treverse_proxy {$KEYGATE_UPSTREAM", "\t\tencode gzip\n\t\treverse_proxy {$KEYGATE_UPSTREAM", ""},
	// Caddy trusts no client-written address
	{"Caddy trusts no client-written address", "trusted proxies", "\tdefault_bind {$CADDY_BIND}\n",
		"\tdefault_bind {$CADDY_BIND}\n\tservers {\n\t\ttrusted_proxies static private_ranges\n\t}\n", "trusted_proxies static private_ranges"},
	{"Caddy trusts no client-written address", "client IP header", "\tdefault_bind {$CADDY_BIND}\n",
		"\tdefault_bind {$CADDY_BIND}\n\tservers {\n\t\tclient_ip_headers X-Forwarded-For\n\t}\n", "client_ip_headers"},
	{"Caddy trusts no client-written address", "client XFF to keygate", "\t\t\turi /auth\n",
		"\t\t\turi /auth\n\t\t\theader_up X-Forwarded-For {http.request.header.X-Forwarded-For}\n", "header_up X-Forwarded-For"},
	{"Caddy trusts no client-written address", "client URI to keygate", "\t\t\turi /auth\n",
		"\t\t\turi /auth\n\t\t\theader_up X-Forwarded-Uri {http.request.header.X-Original-URI}\n", "header_up X-Forwarded-Uri"},
	// Caddy replaces identity, record and credential headers
	{"Caddy replaces identity, record and credential headers", "record header not copied", "X-Keygate-Scopes X-Plan\n", "X-Keygate-Scopes\n", "x-plan neither copied"},
	{"Caddy replaces identity, record and credential headers", "tenant renamed", "X-Keygate-Tenant X-Keygate-Scopes", "X-Keygate-Tenant>X-Tenant X-Keygate-Scopes", "renames"},
	{"Caddy replaces identity, record and credential headers", "reason passed", "\t\trequest_header -X-Keygate-Reason\n", "", "x-keygate-reason neither copied"},
	{"Caddy replaces identity, record and credential headers", "key passed", "\t\trequest_header -X-Api-Key\n", "", "no request_header -x-api-key"},
	{"Caddy replaces identity, record and credential headers", "bearer dropped before keygate", "\t\trequest_header -*_*\n",
		"\t\trequest_header -*_*\n\t\trequest_header -Authorization\n", ""},
	{"Caddy replaces identity, record and credential headers", "tenant set by Caddy", "\t\treverse_proxy {$KEYGATE_UPSTREAM",
		"\t\trequest_header X-Keygate-Tenant acme\n\t\treverse_proxy {$KEYGATE_UPSTREAM", "sets a header only keygate may set"},
	{"Caddy replaces identity, record and credential headers", "scopes appended upstream", "\t\treverse_proxy {$KEYGATE_UPSTREAM:app:8080}\n",
		"\t\treverse_proxy {$KEYGATE_UPSTREAM:app:8080} {\n\t\t\theader_up +X-Keygate-Scopes admin\n\t\t}\n", "changes a header only keygate may set"},
	// Caddy drops header names with underscores first
	{"Caddy drops header names with underscores first", "underscores kept", "\t\trequest_header -*_*\n", "", "want request_header -*_* first"},
	{"Caddy drops header names with underscores first", "underscores dropped late", "\t\trequest_header -*_*\n\t\t#",
		"\t\trequest_header -X-Unused\n\t\trequest_header -*_*\n\t\t#", "want request_header -*_* first"},
}

// TestProxyInvariantMutants proves each nginx and Caddy invariant bites.
func TestProxyInvariantMutants(t *testing.T) {
	for _, tc := range []struct {
		proxyConfig
		mutants []textMutant
	}{
		{proxyConfigs[0], nginxMutants},
		{proxyConfigs[1], caddyMutants},
	} {
		doc := string(readFile(t, tc.file))
		byName := map[string]textInvariant{}
		for _, inv := range tc.invariants {
			byName[inv.name] = inv
		}
		bites := map[string]bool{}
		for _, m := range tc.mutants {
			inv, ok := byName[m.invariant]
			if !ok {
				t.Fatalf("%s: no invariant %q", tc.file, m.invariant)
			}
			bites[m.invariant] = bites[m.invariant] || m.wantErr != ""
			t.Run(tc.file+"/"+m.invariant+"/"+m.name, func(t *testing.T) {
				if n := strings.Count(doc, m.old); n != 1 {
					t.Fatalf("%q occurs %d times in %s, want once", m.old, n, tc.file)
				}
				ds, err := tc.parse(strings.Replace(doc, m.old, m.new, 1))
				if err != nil {
					t.Fatalf("mutant does not parse: %v", err)
				}
				err = inv.check(ds)
				if m.wantErr == "" {
					if err != nil {
						t.Fatalf("harmless edit rejected: %v", err)
					}
					return
				}
				wantRejected(t, err, m.wantErr)
			})
		}
		for _, inv := range tc.invariants {
			if !bites[inv.name] {
				t.Errorf("%s: invariant %q has no mutant it must reject", tc.file, inv.name)
			}
		}
	}
}

// TestProxyParsers pins the parsers on the constructs the configs use.
func TestProxyParsers(t *testing.T) {
	ng, err := parseNginx(`map "$a|$b" $v { "~*^x;{" 0; default 1; } # c ; {
server { location = /a { internal; proxy_set_header X-A ""; } }`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ng) != 2 || ng[0].name != "map" || len(ng[0].block) != 2 || ng[0].block[0].name != "~*^x;{" ||
		find(ng, "proxy_set_header")[0].arg(1) != "" || len(find(ng, "internal")[0].block) != 0 || find(ng, "internal")[0].block != nil {
		t.Errorf("nginx parsed as %v", ng)
	}
	for _, bad := range []string{"server {", "a b", "}", `a "b;`} {
		if _, err := parseNginx(bad); err == nil {
			t.Errorf("nginx %q parsed", bad)
		}
	}
	cf, err := parseCaddyfile("{\n\tadmin off # x\n}\n{$SITE:a.example} {\n\troute {\n\t\tforward_auth k {\n\t\t\turi /auth\n\t\t}\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(cf) != 2 || cf[0].name != "" || len(cf[0].block[0].args) != 1 || cf[1].name != "{$SITE:a.example}" ||
		find(cf, "uri")[0].arg(0) != "/auth" || len(caddySites(cf)) != 1 {
		t.Errorf("Caddyfile parsed as %v", cf)
	}
	for _, bad := range []string{"a {\n", "}\n"} {
		if _, err := parseCaddyfile(bad); err == nil {
			t.Errorf("Caddyfile %q parsed", bad)
		}
	}
}
