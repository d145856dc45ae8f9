package policy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

const (
	hex64      = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	hex64Upper = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
)

var (
	pepperV1 = bytes.Repeat([]byte{0x11}, MinPepperLen)
	pepperV2 = bytes.Repeat([]byte{0x22}, MinPepperLen+8)
)

func mustHasher(t testing.TB, alg string, p Peppers) *Hasher {
	t.Helper()
	h, err := NewHasher(alg, p)
	if err != nil {
		t.Fatalf("NewHasher(%q): %v", alg, err)
	}
	return h
}

func TestParseDigestAllow(t *testing.T) {
	sum := sha256.Sum256([]byte("test"))
	tests := []struct {
		in   string
		want Digest
	}{
		{"sha256:" + hex64, Digest{Alg: AlgSHA256, Sum: sum}},
		{"sha256:" + hex64Upper, Digest{Alg: AlgSHA256, Sum: sum}},
		{"hmac-sha256:v1:" + hex64, Digest{Alg: AlgHMACSHA256, PepperVersion: 1, Sum: sum}},
		{"hmac-sha256:v42:" + hex64, Digest{Alg: AlgHMACSHA256, PepperVersion: 42, Sum: sum}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDigest(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseDigest = %+v, %v; want %+v, nil", got, err, tt.want)
			}
		})
	}
}

func TestParseDigestDeny(t *testing.T) {
	for _, in := range []string{
		"",
		"sha256",
		"sha256:",
		hex64,
		"sha256:" + hex64[:63],
		"sha256:" + hex64 + "0",
		"sha256:" + hex64[:62] + "zz",
		"sha256:" + hex64 + " ",
		"sha256:" + hex64 + "\n",
		" sha256:" + hex64,
		"SHA256:" + hex64,
		"sha-256:" + hex64,
		"md5:" + hex64,
		"bcrypt:" + hex64,
		"sha256:v1:" + hex64,
		"hmac-sha256:" + hex64,
		"hmac-sha256:1:" + hex64,
		"hmac-sha256:V1:" + hex64,
		"hmac-sha256:v:" + hex64,
		"hmac-sha256:v0:" + hex64,
		"hmac-sha256:v-1:" + hex64,
		"hmac-sha256:vx:" + hex64,
		"hmac-sha256:v1",
		"hmac-sha256:v1:",
		"hmac-sha256:v1:v1:" + hex64,
		"hmac-sha256:v99999999999999999999:" + hex64,
		// strconv.Atoi accepts a sign: the digest text must not.
		"hmac-sha256:v+1:" + hex64,
		"hmac-sha256:v 1:" + hex64,
	} {
		t.Run(in, func(t *testing.T) {
			if d, err := ParseDigest(in); err == nil {
				t.Fatalf("ParseDigest(%q) = %+v, want an error", in, d)
			}
		})
	}
}

func TestDigestStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"sha256:" + hex64,
		"hmac-sha256:v1:" + hex64,
		"hmac-sha256:v7:" + strings.Repeat("0", 64),
		"hmac-sha256:v1000:" + strings.Repeat("f", 64),
	} {
		d, err := ParseDigest(s)
		if err != nil {
			t.Fatalf("ParseDigest(%q): %v", s, err)
		}
		if got := d.String(); got != s {
			t.Errorf("ParseDigest(%q).String() = %q", s, got)
		}
	}
	h := mustHasher(t, AlgHMACSHA256, Peppers{Current: 3, Versions: map[int][]byte{3: pepperV1}})
	d := h.Hash(fixedKey)
	back, err := ParseDigest(d.String())
	if err != nil || back != d {
		t.Fatalf("ParseDigest(Hash().String()) = %+v, %v; want %+v", back, err, d)
	}
}

func TestHasherHashVerify(t *testing.T) {
	f := mustFormat(t, DefaultPrefix)
	rawKey, _ := mustGenerate(t, f)
	otherKey, _ := mustGenerate(t, f)
	typo := rawKey[:len(rawKey)-1] + "x"
	if typo == rawKey {
		typo = rawKey[:len(rawKey)-1] + "y"
	}

	wantSHA := sha256.Sum256([]byte(rawKey))
	m := hmac.New(sha256.New, pepperV1)
	m.Write([]byte(rawKey))
	var wantHMAC [sha256.Size]byte
	copy(wantHMAC[:], m.Sum(nil))

	tests := []struct {
		name    string
		h       *Hasher
		wantAlg string
		wantVer int
		wantSum [sha256.Size]byte
	}{
		{"sha256", mustHasher(t, AlgSHA256, Peppers{}), AlgSHA256, 0, wantSHA},
		{"hmac-sha256", mustHasher(t, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}}), AlgHMACSHA256, 1, wantHMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.h.alg != tt.wantAlg {
				t.Errorf("alg = %q", tt.h.alg)
			}
			d := tt.h.Hash(rawKey)
			if d.Alg != tt.wantAlg || d.PepperVersion != tt.wantVer || d.Sum != tt.wantSum {
				t.Fatalf("Hash = %+v, want alg %s v%d sum %x", d, tt.wantAlg, tt.wantVer, tt.wantSum)
			}
			// The stored text form verifies too.
			stored, err := ParseDigest(d.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				key  string
				want bool
			}{
				{"same key", rawKey, true},
				{"other key", otherKey, false},
				{"one character changed", typo, false},
				{"trailing newline", rawKey + "\n", false},
				{"empty", "", false},
				{"longer than the stack buffer", rawKey + strings.Repeat("A", 200), false},
			} {
				ok, err := tt.h.Verify(c.key, stored)
				if err != nil || ok != c.want {
					t.Errorf("%s: Verify = %v, %v; want %v, nil", c.name, ok, err, c.want)
				}
			}
		})
	}
}

// TestSHA256AroundTheBuffer: sha256 digests of keys up to, at and past the
// pooled buffer's size are the plain SHA-256 of the whole key (a longer key
// must never be cut to the buffer), and keys that fit the buffer (every
// keygate key, most imported ones) hash without allocating.
func TestSHA256AroundTheBuffer(t *testing.T) {
	h := mustHasher(t, AlgSHA256, Peppers{})
	bufLen := len(sha256State{}.buf)
	for _, n := range []int{1, bufLen - 1, bufLen, bufLen + 1, MaxImportedKeyLen} {
		key := strings.Repeat("k", n-1) + "x"
		want := sha256.Sum256([]byte(key))
		if d := h.Hash(key); d.Sum != want {
			t.Errorf("%d-byte key: Hash = %x, want %x", n, d.Sum, want)
		}
		// Differs only in its last byte, past the buffer for long keys.
		twin := strings.Repeat("k", n-1) + "y"
		if ok, err := h.Verify(twin, Digest{Alg: AlgSHA256, Sum: want}); ok || err != nil {
			t.Errorf("%d-byte key: Verify of a key differing in its last byte = %v, %v", n, ok, err)
		}
	}
	key := strings.Repeat("k", bufLen)
	d := h.Hash(key)
	if n := testing.AllocsPerRun(100, func() { _, _ = h.Verify(key, d) }); n != 0 {
		t.Errorf("Verify of a %d-byte key allocates %.0f times, want 0", bufLen, n)
	}
}

func TestHasherLongKey(t *testing.T) {
	long := strings.Repeat("k", 500) // longer than sum's stack buffer
	for _, h := range []*Hasher{
		mustHasher(t, AlgSHA256, Peppers{}),
		mustHasher(t, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}}),
	} {
		ok, err := h.Verify(long, h.Hash(long))
		if !ok || err != nil {
			t.Errorf("%s: Verify(long key) = %v, %v", h.alg, ok, err)
		}
	}
}

func TestHasherCrossAlgorithm(t *testing.T) {
	shaHasher := mustHasher(t, AlgSHA256, Peppers{})
	hmacHasher := mustHasher(t, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}})

	// An HMAC hasher still verifies records hashed with plain SHA-256.
	if ok, err := hmacHasher.Verify(fixedKey, shaHasher.Hash(fixedKey)); !ok || err != nil {
		t.Errorf("hmac hasher verifying sha256 digest = %v, %v; want true, nil", ok, err)
	}
	// A SHA-256 hasher holds no pepper.
	ok, err := shaHasher.Verify(fixedKey, hmacHasher.Hash(fixedKey))
	if ok || !errors.Is(err, ErrUnknownPepper) {
		t.Errorf("sha256 hasher verifying hmac digest = %v, %v; want false, ErrUnknownPepper", ok, err)
	}
	// The same sum under the other algorithm never verifies.
	d := shaHasher.Hash(fixedKey)
	d.Alg, d.PepperVersion = AlgHMACSHA256, 1
	if ok, err := hmacHasher.Verify(fixedKey, d); ok || err != nil {
		t.Errorf("sha256 sum labelled hmac = %v, %v; want false, nil", ok, err)
	}
	for _, d := range []Digest{{}, {Alg: "md5"}, {Alg: "SHA256"}} {
		if ok, err := hmacHasher.Verify(fixedKey, d); ok || err == nil {
			t.Errorf("Verify with alg %q = %v, %v; want false and an error", d.Alg, ok, err)
		}
	}
}

func TestPepperRotation(t *testing.T) {
	rawKey := fixedKey
	before := mustHasher(t, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}})
	d1 := before.Hash(rawKey)

	after := mustHasher(t, AlgHMACSHA256, Peppers{Current: 2, Versions: map[int][]byte{1: pepperV1, 2: pepperV2}})
	d2 := after.Hash(rawKey)
	if d2.PepperVersion != 2 {
		t.Fatalf("new digest uses pepper v%d, want v2", d2.PepperVersion)
	}
	if d1.Sum == d2.Sum {
		t.Fatal("pepper v1 and v2 give the same sum")
	}
	for name, d := range map[string]Digest{"v1 record": d1, "v2 record": d2} {
		if ok, err := after.Verify(rawKey, d); !ok || err != nil {
			t.Errorf("%s after rotation: Verify = %v, %v; want true, nil", name, ok, err)
		}
	}

	dropped := mustHasher(t, AlgHMACSHA256, Peppers{Current: 2, Versions: map[int][]byte{2: pepperV2}})
	if ok, err := dropped.Verify(rawKey, d1); ok || !errors.Is(err, ErrUnknownPepper) {
		t.Errorf("v1 record with v1 unloaded: Verify = %v, %v; want false, ErrUnknownPepper", ok, err)
	}
	future := Digest{Alg: AlgHMACSHA256, PepperVersion: 9, Sum: d1.Sum}
	if ok, err := after.Verify(rawKey, future); ok || !errors.Is(err, ErrUnknownPepper) {
		t.Errorf("unknown version 9: Verify = %v, %v; want false, ErrUnknownPepper", ok, err)
	}

	// Same version number, different secret: no match, no error.
	wrong := mustHasher(t, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV2}})
	if ok, err := wrong.Verify(rawKey, d1); ok || err != nil {
		t.Errorf("wrong pepper under v1: Verify = %v, %v; want false, nil", ok, err)
	}
}

func TestNewHasherAllow(t *testing.T) {
	tests := []struct {
		name string
		alg  string
		p    Peppers
	}{
		{"sha256 without peppers", AlgSHA256, Peppers{}},
		{"sha256 with peppers loaded for old records", AlgSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}}},
		{"hmac one version", AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}}},
		{"hmac two versions", AlgHMACSHA256, Peppers{Current: 2, Versions: map[int][]byte{1: pepperV1, 2: pepperV2}}},
		{"hmac current is the older one", AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1, 2: pepperV2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.alg, tt.p)
			if err != nil || h == nil {
				t.Fatalf("NewHasher = %v, %v", h, err)
			}
		})
	}
}

func TestNewHasherDeny(t *testing.T) {
	short := bytes.Repeat([]byte{1}, MinPepperLen-1)
	tests := []struct {
		name string
		alg  string
		p    Peppers
		want []string
	}{
		{"unknown alg", "md5", Peppers{}, []string{`"md5"`}},
		{"empty alg", "", Peppers{}, []string{`""`}},
		{"bcrypt", "bcrypt", Peppers{}, []string{`"bcrypt"`}},
		{"hmac without peppers", AlgHMACSHA256, Peppers{}, []string{"current pepper version 0 is not loaded"}},
		{"hmac current missing", AlgHMACSHA256, Peppers{Current: 3, Versions: map[int][]byte{1: pepperV1}}, []string{"current pepper version 3 is not loaded"}},
		{"short pepper", AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: short}}, []string{"pepper version 1: 31 bytes"}},
		{"empty pepper", AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: nil}}, []string{"pepper version 1: 0 bytes"}},
		{"short old pepper", AlgHMACSHA256, Peppers{Current: 2, Versions: map[int][]byte{1: short, 2: pepperV2}}, []string{"pepper version 1"}},
		{"short pepper with sha256", AlgSHA256, Peppers{Versions: map[int][]byte{1: short}}, []string{"pepper version 1"}},
		{"version zero", AlgHMACSHA256, Peppers{Current: 0, Versions: map[int][]byte{0: pepperV1}}, []string{"pepper version 0: must be >= 1"}},
		{
			"all at once: bad alg, short pepper, bad version", "argon2",
			Peppers{Current: 1, Versions: map[int][]byte{1: short, -1: pepperV1}},
			[]string{`"argon2"`, "pepper version 1: 31 bytes", "pepper version -1: must be >= 1"},
		},
		{
			"all at once: missing current and short pepper", AlgHMACSHA256,
			Peppers{Current: 5, Versions: map[int][]byte{1: short, 2: {}}},
			[]string{"current pepper version 5", "pepper version 1: 31 bytes", "pepper version 2: 0 bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.alg, tt.p)
			if h != nil {
				t.Errorf("NewHasher returned a Hasher with an error")
			}
			wantErrContaining(t, err, tt.want...)
			if bytes.Contains([]byte(err.Error()), pepperV1) {
				t.Error("error contains a pepper")
			}
		})
	}
}

func BenchmarkVerifySHA256(b *testing.B) {
	h := mustHasher(b, AlgSHA256, Peppers{})
	d := h.Hash(fixedKey)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := h.Verify(fixedKey, d); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkVerifyHMACSHA256(b *testing.B) {
	h := mustHasher(b, AlgHMACSHA256, Peppers{Current: 1, Versions: map[int][]byte{1: pepperV1}})
	d := h.Hash(fixedKey)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := h.Verify(fixedKey, d); !ok {
			b.Fatal("no match")
		}
	}
}
