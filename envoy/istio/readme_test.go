package istio

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/docs"
)

// checkREADME names, for each check that keeps a README promise, the README
// sentence (whitespace aside, verbatim) it protects. Changing one without
// the other fails TestChecksCiteREADME.
var checkREADME = map[string]string{
	"strip filter applies where the policy does":                "an `EnvoyFilter` in the root namespace for the same workloads",
	"client headers stripped before ext_authz on every request": "puts Envoy's `header_mutation` filter first in every inbound (and gateway) HTTP filter chain, before Istio's ext_authz, dropping client-sent `x-keygate-key-id`, `-tenant`, `-scopes`, `-reason` and `x-plan` on every request, `/healthz` included",
	"header names with underscores rejected":                    "rejects header names with underscores (`headers_with_underscores_action: REJECT_REQUEST`) as envoy.yaml does",
	"no other patches":                                          "an `EnvoyFilter` in the root namespace for the same workloads that puts Envoy's `header_mutation` filter first",
	"record header names agree":                                 "List each record header name your keys set in three places, which the tests keep in step",
	"no trusted proxies in the mesh":                            "keygate.yaml sets no `--trusted-proxies`, so do not give keys used through the HTTP provider `allowed_cidrs`.",
	"authorization policy sends requests to keygate":            "sending every request except exactly `/healthz` on pods labelled `keygate.io/protected: \"true\"` to keygate",
	"extension providers point at the Service":                  "adding the `keygate` (gRPC) and `keygate-http` extension providers (0.2 s timeout, fail closed, 503 on error)",
	"startup probe outlasts the warm-up":                        "The tests require the startup probe's window to be at least `--warmup-timeout` plus one minute for the Vault login",
	"rollouts keep every ready replica":                         "The tests require a rolling update with `maxUnavailable` 0 and a `maxSurge` of at least 1.",
}

var spaceRun = regexp.MustCompile(`\s+`)

func collapseSpace(s string) string { return spaceRun.ReplaceAllString(s, " ") }

func TestChecksCiteREADME(t *testing.T) {
	text, err := docs.Text("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme := collapseSpace(text)
	var names []string
	for _, c := range allChecks {
		names = append(names, c.name)
	}
	for name, sentence := range checkREADME {
		if !slices.Contains(names, name) {
			t.Errorf("no check named %q", name)
		}
		if !strings.Contains(readme, collapseSpace(sentence)) {
			t.Errorf("check %q: the documentation (README.md, docs/) does not say %q", name, sentence)
		}
	}
}
