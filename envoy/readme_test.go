package envoy

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/docs"
)

// policyREADME names, for each policy that keeps a README promise, the
// README sentence (whitespace aside, verbatim) it protects. Changing one
// without the other fails TestPoliciesCiteREADME.
var policyREADME = map[string]string{
	"client-sent identity and record headers are dropped": "drops client-sent `x-keygate-key-id`, `-tenant`, `-scopes`, `-reason` and the example record header `x-plan` on every route, `/healthz` included, so upstreams can trust them on every request",
	"http filter chain":                 "A `header_mutation` filter first drops client-sent",
	"headers copied upstream on allow":  "Every record header name must also be in `allowed_upstream_headers`, or Envoy drops the key's value.",
	"check request headers":             "Envoy (`use_remote_address: true`) appends the client's address to `X-Forwarded-For`, which keygate believes only from a trusted proxy.",
	"connection manager hardening":      "path normalisation and `headers_with_underscores_action: REJECT_REQUEST`",
	"ext_authz fails closed":            "`failure_mode_allow: false`",
	"ext_authz errors are 503":          "`status_on_error: 503`",
	"ext_authz timeout":                 "a 0.25s timeout",
	"ext_authz sends raw headers":       "`encode_raw_headers: true`",
	"ext_authz allowed_headers":         "an `allowed_headers` list",
	"/orders requires orders:read":      "a per-route `keygate.scopes` context extension",
	"no per-route scopes":               "Envoy sends no per-route context extensions to HTTP servers: use `--routes-file`.",
	"ext_authz calls keygate over HTTP": "checks under `/ext_authz`",
}

var spaceRun = regexp.MustCompile(`\s+`)

func collapseSpace(s string) string { return spaceRun.ReplaceAllString(s, " ") }

func TestPoliciesCiteREADME(t *testing.T) {
	text, err := docs.Text("..")
	if err != nil {
		t.Fatal(err)
	}
	readme := collapseSpace(text)
	var names []string
	for _, p := range slices.Concat(envoyPolicies, httpPolicies, rateLimitPolicies) {
		names = append(names, p.name)
	}
	for name, sentence := range policyREADME {
		if !slices.Contains(names, name) {
			t.Errorf("no policy named %q", name)
		}
		if !strings.Contains(readme, collapseSpace(sentence)) {
			t.Errorf("policy %q: the documentation (README.md, docs/) does not say %q", name, sentence)
		}
	}
}
