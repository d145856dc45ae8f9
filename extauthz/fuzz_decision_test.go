package extauthz

import (
	"testing"

	"github.com/keygate/keygate/internal/fuzzcorpus"
	"github.com/keygate/keygate/policy"
)

type decisionTarget struct {
	seeds    [][]any
	classify fuzzcorpus.Classifier
}

// decisionTargets are the classifiers of this package's decision fuzzers,
// for TestFuzzCorpusReachesAllow and TestFuzzClassify (scripts/fuzz-seed.sh).
func decisionTargets(t testing.TB) map[string]decisionTarget {
	c, h, l := newCheckFuzz(t), newHTTPFuzz(t), newLeanFuzz(t)
	strings6 := func(t testing.TB, v []any) (out [6]string) {
		for i := range out {
			out[i] = fuzzcorpus.Arg[string](t, v, i)
		}
		return out
	}
	list6 := func(seeds [][6]string) (out [][]any) {
		for _, s := range seeds {
			out = append(out, []any{s[0], s[1], s[2], s[3], s[4], s[5]})
		}
		return out
	}
	var lean [][]any
	for _, b := range leanSeedBytes() {
		lean = append(lean, []any{b})
	}
	return map[string]decisionTarget{
		"FuzzCheck": {list6(checkSeeds), func(t *testing.T, v []any) string { return c.decide(t, strings6(t, v)) }},
		"FuzzHTTPCheck": {list6(httpSeeds), func(t *testing.T, v []any) string {
			return h.decide(t, strings6(t, v))
		}},
		"FuzzLeanDecoder": {lean, func(t *testing.T, v []any) string { return l.decide(t, fuzzcorpus.Arg[[]byte](t, v, 0)) }},
	}
}

// TestFuzzCorpusReachesAllow replays each decision fuzzer's seeds and
// committed corpus: each must reach an allow and a deny.
func TestFuzzCorpusReachesAllow(t *testing.T) {
	for name, target := range decisionTargets(t) {
		t.Run(name, func(t *testing.T) {
			fuzzcorpus.Replay(t, name, target.seeds, policy.Allowed.String(), target.classify)
		})
	}
}

// TestFuzzClassify serves scripts/fuzz-seed.sh (see package fuzzcorpus).
func TestFuzzClassify(t *testing.T) {
	classifiers := map[string]fuzzcorpus.Classifier{}
	for name, target := range decisionTargets(t) {
		classifiers[name] = target.classify
	}
	fuzzcorpus.Classify(t, classifiers)
}
