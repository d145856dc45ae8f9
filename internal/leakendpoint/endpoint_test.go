package leakendpoint

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keygate/keygate/internal/keyadmin"
	"github.com/keygate/keygate/internal/leakscan"
	"github.com/keygate/keygate/policy"
)

// tokens is one token of each kind the endpoint must tell apart.
type tokens struct {
	active, revoked, expired *keyadmin.Issued
	unknown, forged          string // valid checksums, never stored (forged: the active key's id)
	otherPrefix              string // a valid key of another prefix, never stored
	broken, notOurs, wrapped string // a bad checksum; a GitHub-style token; "x" + the active key
}

func newTokens(t *testing.T, f *fixture) *tokens {
	t.Helper()
	tk := &tokens{active: f.issue(t, keyadmin.Fields{}), revoked: f.issue(t, keyadmin.Fields{})}
	if _, err := f.svc.Revoke(context.Background(), tk.revoked.ID, "rotated"); err != nil {
		t.Fatal(err)
	}
	past, err := keyadmin.New(keyadmin.Config{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}, f.store)
	if err != nil {
		t.Fatal(err)
	}
	tenant := "acme"
	if tk.expired, err = past.Issue(context.Background(), keyadmin.Fields{Tenant: &tenant, ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	kg, _ := policy.NewFormat("kg")
	other, _ := policy.NewFormat("acme")
	tk.unknown, _, _ = kg.Generate()
	tk.otherPrefix, _, _ = other.Generate()
	tk.forged = withChecksum(t, kg, "kg_"+tk.active.ID+strings.Repeat("Q", policy.SecretLen))
	last := tk.active.RawKey[len(tk.active.RawKey)-1]
	tk.broken = tk.active.RawKey[:len(tk.active.RawKey)-1] + map[bool]string{true: "B", false: "A"}[last == 'A']
	tk.notOurs = "ghp_" + strings.Repeat("a1B2", 9)
	tk.wrapped = "x" + tk.active.RawKey
	f.secrets = append(f.secrets, tk.expired.RawKey, tk.unknown, tk.otherPrefix, tk.forged, tk.broken)
	return tk
}

// withChecksum appends the base62 CRC32 of signed (prefix_ + 44
// characters), and checks that policy's parser agrees.
func withChecksum(t *testing.T, f policy.Format, signed string) string {
	t.Helper()
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := uint64(crc32.ChecksumIEEE([]byte(signed)))
	var enc [6]byte
	for i := len(enc) - 1; i >= 0; i-- {
		enc[i] = digits[sum%62]
		sum /= 62
	}
	k := signed + string(enc[:])
	if _, err := f.Parse(k); err != nil {
		t.Fatalf("withChecksum: %v", err)
	}
	return k
}

func decodeFeedback(t *testing.T, body string) []Feedback {
	t.Helper()
	var fb []Feedback
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fb); err != nil {
		t.Fatalf("response is not GitHub's feedback array: %v", err)
	}
	return fb
}

// TestLabels: a signed report gets one {token_hash, token_type, label} per
// token, in order: keys the store holds (active, revoked, expired) are
// true positives; unknown, forged, other-prefix, checksum-broken,
// non-keygate and wrapped tokens are false positives. Without Revoke
// nothing changes in the store.
func TestLabels(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	tk := newTokens(t, f)
	cases := []struct {
		name, token string
		want        Label
	}{
		{"active", tk.active.RawKey, TruePositive},
		{"revoked", tk.revoked.RawKey, TruePositive},
		{"expired", tk.expired.RawKey, TruePositive},
		{"unknown", tk.unknown, FalsePositive},
		{"forged (real id, other secret)", tk.forged, FalsePositive},
		{"other prefix, not stored", tk.otherPrefix, FalsePositive},
		{"checksum broken", tk.broken, FalsePositive},
		{"not a keygate token", tk.notOurs, FalsePositive},
		{"key inside a longer token", tk.wrapped, FalsePositive},
		{"active again (duplicates answered each)", tk.active.RawKey, TruePositive},
	}
	var toks []string
	for _, c := range cases {
		toks = append(toks, c.token)
	}
	status, body := f.post(t, reportBody(t, toks...), nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	fb := decodeFeedback(t, body)
	if len(fb) != len(cases) {
		t.Fatalf("%d answers for %d tokens", len(fb), len(cases))
	}
	for i, c := range cases {
		want := Feedback{TokenHash: tokenHash(c.token), TokenType: "keygate_api_key", Label: c.want}
		if fb[i] != want {
			t.Errorf("%s: got %+v, want %+v", c.name, fb[i], want)
		}
	}
	if st, _ := f.status(t, tk.active.ID); st != policy.StatusActive {
		t.Errorf("without Revoke the active key is %s", st)
	}
	logs := f.log.String()
	for _, want := range []string{`"key_id":"` + tk.active.ID + `"`, `"status":"active"`, `"url":"https://github.com/octo/repo/blob/abc/app.env"`,
		`"source":"content"`, `"msg":"leak report handled"`, `"key_identifier":"gh-key-1"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// TestRevoke: with Revoke the active key is revoked with reason "leaked";
// an already revoked key keeps its reason; labels are unchanged.
func TestRevoke(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Revoke = true
	f := newFixture(t, cfg)
	tk := newTokens(t, f)
	bystander := f.issue(t, keyadmin.Fields{})
	status, body := f.post(t, reportBody(t, tk.active.RawKey, tk.revoked.RawKey, tk.forged, tk.unknown), nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	fb := decodeFeedback(t, body)
	if fb[0].Label != TruePositive || fb[1].Label != TruePositive || fb[2].Label != FalsePositive || fb[3].Label != FalsePositive {
		t.Errorf("labels: %+v", fb)
	}
	for _, c := range []struct {
		id, status, reason string
	}{
		{tk.active.ID, policy.StatusRevoked, "leaked"},
		{tk.revoked.ID, policy.StatusRevoked, "rotated"},
		{bystander.ID, policy.StatusActive, ""},
	} {
		if st, reason := f.status(t, c.id); st != c.status || reason != c.reason {
			t.Errorf("key %s: %s (%q), want %s (%q)", c.id, st, reason, c.status, c.reason)
		}
	}
	if !strings.Contains(f.log.String(), `"msg":"leaked key revoked"`) {
		t.Error("the revocation is not logged")
	}
}

// TestRefused: every request that is not a verified, well-formed, new
// report is refused with a 4xx and a reason, and revokes nothing.
func TestRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Revoke = true
	cfg.MaxBody = 4096
	cfg.MaxTokens = 3
	f := newFixture(t, cfg)
	tk := newTokens(t, f)
	good := reportBody(t, tk.active.RawKey)
	sig := f.github.sign(t, good)
	impostor := newSigner(t, f.github.id, elliptic.P256()) // same id, another key
	p384 := newSigner(t, f.github.id, elliptic.P384())
	rawSig, _ := base64.StdEncoding.DecodeString(sig)
	hdr := func(id, sig string) http.Header {
		return http.Header{HeaderKeyID: {id}, HeaderSignature: {sig}}
	}
	signed := func(body []byte) http.Header { return hdr(f.github.id, f.github.sign(t, body)) }
	big := reportBody(t, tk.active.RawKey, strings.Repeat("x", 5000))
	cases := []struct {
		name   string
		body   []byte
		hdr    http.Header
		status int
		reason string
	}{
		{"no headers", good, http.Header{}, 401, "want exactly one"},
		{"no signature", good, http.Header{HeaderKeyID: {f.github.id}}, 401, "want exactly one"},
		{"two key ids", good, http.Header{HeaderKeyID: {f.github.id, "other"}, HeaderSignature: {sig}}, 401, "want exactly one"},
		{"unknown key id", good, hdr("gh-key-unknown", sig), 401, "unknown public key identifier"},
		{"signature of another body", good, hdr(f.github.id, f.github.sign(t, reportBody(t, tk.unknown))), 401, "does not verify"},
		{"signed by another key", good, hdr(f.github.id, impostor.sign(t, good)), 401, "does not verify"},
		{"signed with P-384", good, hdr(f.github.id, p384.sign(t, good)), 401, "does not verify"},
		{"truncated signature", good, hdr(f.github.id, base64.StdEncoding.EncodeToString(rawSig[:len(rawSig)-1])), 401, "does not verify"},
		{"signature with trailing bytes", good, hdr(f.github.id, base64.StdEncoding.EncodeToString(append(rawSig, 0))), 401, "does not verify"},
		{"signature not base64", good, hdr(f.github.id, "!!"+sig), 401, "does not verify"},
		{"raw r||s signature", good, hdr(f.github.id, rawRS(t, rawSig)), 401, "does not verify"},
		{"body changed after signing", append(good[:len(good)-1:len(good)-1], ' ', ']'), hdr(f.github.id, sig), 401, "does not verify"},
		{"oversized body", big, signed(big), 413, "limit"},
		{"too many tokens", reportBody(t, "a", "b", "c", "d"), signed(reportBody(t, "a", "b", "c", "d")), 413, "too many tokens"},
		{"not JSON", []byte("token=" + tk.active.RawKey), signed([]byte("token=" + tk.active.RawKey)), 400, "malformed report"},
		{"an object, not an array", []byte(`{"token":"` + tk.active.RawKey + `"}`), signed([]byte(`{"token":"` + tk.active.RawKey + `"}`)), 400, "want a JSON array"},
		{"truncated JSON", good[:len(good)-2], signed(good[:len(good)-2]), 400, "malformed report"},
		{"token not a string", []byte(`[{"token":42}]`), signed([]byte(`[{"token":42}]`)), 400, "want a string"},
		{"no token", []byte(`[{"type":"keygate_api_key"}]`), signed([]byte(`[{"type":"keygate_api_key"}]`)), 400, "no token"},
		{"trailing data", append(append([]byte{}, good...), good...), signed(append(append([]byte{}, good...), good...)), 400, "data after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.post(t, c.body, c.hdr)
			if status != c.status || !strings.Contains(body, c.reason) {
				t.Errorf("got %d %s, want %d with %q", status, body, c.status, c.reason)
			}
			if st, _ := f.status(t, tk.active.ID); st != policy.StatusActive {
				t.Fatalf("a refused request revoked the key")
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := f.srv.Client().Get(f.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d", resp.StatusCode)
		}
	})
	if n := f.ep.replay.len(); n != 0 {
		t.Errorf("refused requests filled the replay memory: %d", n)
	}
	// The good request itself still works, after all that.
	if status, body := f.post(t, good, hdr(f.github.id, sig)); status != 200 || !strings.Contains(body, string(TruePositive)) {
		t.Errorf("the good request: %d %s", status, body)
	}
}

// rawRS is sig re-encoded as base64(r||s) (JWS style), which GitHub does
// not send.
func rawRS(t *testing.T, der []byte) string {
	t.Helper()
	r, s := parseDER(t, der)
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return base64.StdEncoding.EncodeToString(out)
}

func parseDER(t *testing.T, der []byte) (r, s *big.Int) {
	t.Helper()
	r, s = new(big.Int), new(big.Int)
	in := cryptobyte.String(der)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) {
		t.Fatal("bad DER signature")
	}
	return r, s
}

// TestReplay: the same report is refused the second time (409), also with
// the other valid encoding of its signature (ECDSA malleability: (r, n-s)),
// and nothing is done again; a different report is not a replay.
func TestReplay(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Revoke = true
	f := newFixture(t, cfg)
	tk := newTokens(t, f)
	body := reportBody(t, tk.active.RawKey)
	sig := f.github.sign(t, body)
	if st, b := f.post(t, body, http.Header{HeaderKeyID: {f.github.id}, HeaderSignature: {sig}}); st != 200 {
		t.Fatalf("first: %d %s", st, b)
	}
	if st, b := f.post(t, body, http.Header{HeaderKeyID: {f.github.id}, HeaderSignature: {sig}}); st != http.StatusConflict || !strings.Contains(b, "replayed") {
		t.Errorf("replay: %d %s", st, b)
	}
	der, _ := base64.StdEncoding.DecodeString(sig)
	r, s := parseDER(t, der)
	s.Sub(elliptic.P256().Params().N, s)
	var bld cryptobyte.Builder
	bld.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1BigInt(r); b.AddASN1BigInt(s) })
	malleated := base64.StdEncoding.EncodeToString(bld.BytesOrPanic())
	if !ecdsa.VerifyASN1(&f.github.key.PublicKey, sha256Sum(body), mustB64(t, malleated)) {
		t.Fatal("the malleated signature does not verify: the test is wrong")
	}
	if st, b := f.post(t, body, http.Header{HeaderKeyID: {f.github.id}, HeaderSignature: {malleated}}); st != http.StatusConflict {
		t.Errorf("replay with a malleated signature: %d %s", st, b)
	}
	other := reportBody(t, tk.active.RawKey, tk.unknown)
	if st, b := f.post(t, other, nil); st != 200 {
		t.Errorf("another report: %d %s", st, b)
	}
}

// TestStoreDown: when the store cannot answer, the report gets 503 (so
// that GitHub retries) and is not remembered as seen: the retry, once the
// store is back, is answered and revokes the key.
func TestStoreDown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Revoke = true
	f := newFixture(t, cfg)
	tk := newTokens(t, f)
	down := &flakyKeys{Keys: f.svc}
	sealed := errors.New("vault: 503 sealed")
	down.err.Store(&sealed)
	f.serve(t, cfg, Store{Keys: down, Peppers: f.keys.Peppers}, f.ep.keys)
	body := reportBody(t, tk.active.RawKey, tk.notOurs)
	sig := f.github.sign(t, body)
	hdr := http.Header{HeaderKeyID: {f.github.id}, HeaderSignature: {sig}}
	if st, b := f.post(t, body, hdr); st != http.StatusServiceUnavailable {
		t.Fatalf("store down: %d %s", st, b)
	}
	down.err.Store(nil)
	if st, b := f.post(t, body, hdr); st != 200 || decodeFeedback(t, b)[0].Label != TruePositive {
		t.Fatalf("retry: %d %s", st, b)
	}
	if st, reason := f.status(t, tk.active.ID); st != policy.StatusRevoked || reason != "leaked" {
		t.Errorf("after the retry: %s %q", st, reason)
	}
}

// flakyKeys fails every Get with err while it is set.
type flakyKeys struct {
	leakscan.Keys
	err atomic.Pointer[error]
}

func (k *flakyKeys) Get(ctx context.Context, id string) (*keyadmin.Key, error) {
	if err := k.err.Load(); err != nil {
		return nil, *err
	}
	return k.Keys.Get(ctx, id)
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
