package policy

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, prefix := range []string{"kg", "a", "sk", "live1", "x9", "abcdefghij"} {
		t.Run(prefix, func(t *testing.T) {
			f := mustFormat(t, prefix)
			if got := f.Prefix(); got != prefix {
				t.Errorf("Prefix() = %q, want %q", got, prefix)
			}
			if want := len(prefix) + 1 + IDLen + SecretLen + checksumLen; f.Len() != want {
				t.Errorf("Len() = %d, want %d", f.Len(), want)
			}
			seen := make(map[string]bool)
			for range 200 {
				rawKey, keyID := mustGenerate(t, f)
				if len(rawKey) != f.Len() {
					t.Fatalf("generated key has length %d, want %d", len(rawKey), f.Len())
				}
				if !strings.HasPrefix(rawKey, prefix+"_") {
					t.Fatalf("generated key does not start with %q", prefix+"_")
				}
				if !ValidID(keyID) {
					t.Fatalf("generated id %q is not ValidID", keyID)
				}
				if keyID != rawKey[len(prefix)+1:len(prefix)+1+IDLen] {
					t.Fatalf("id %q is not the 12 characters after the prefix", keyID)
				}
				if makeKey(prefix, rawKey[len(prefix)+1:len(rawKey)-checksumLen]) != rawKey {
					t.Fatal("checksum is not base62(CRC32-IEEE(prefix_id_secret)), 6 digits")
				}
				gotID, err := f.Parse(rawKey)
				if err != nil || gotID != keyID {
					t.Fatalf("Parse(generated) = %q, %v; want %q, nil", gotID, err, keyID)
				}
				if seen[rawKey] || seen[keyID] {
					t.Fatal("Generate repeated a key or id")
				}
				seen[rawKey], seen[keyID] = true, true
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	kg := mustFormat(t, "kg")
	tests := []struct {
		name   string
		f      Format
		rawKey string
		wantID string
	}{
		{"fixed key", kg, fixedKey, "4VvXJ3tq9aBz"},
		{"all zeros", kg, makeKey("kg", strings.Repeat("0", 44)), "000000000000"},
		{"all z", kg, makeKey("kg", strings.Repeat("z", 44)), "zzzzzzzzzzzz"},
		{"ten character prefix", mustFormat(t, "abcdefghij"), makeKey("abcdefghij", strings.Repeat("Aa", 22)), "AaAaAaAaAaAa"},
		{"one character prefix", mustFormat(t, "k"), makeKey("k", strings.Repeat("9Z", 22)), "9Z9Z9Z9Z9Z9Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.f.Parse(tt.rawKey)
			if err != nil || id != tt.wantID {
				t.Fatalf("Parse = %q, %v; want %q, nil", id, err, tt.wantID)
			}
		})
	}
}

func TestParseDeny(t *testing.T) {
	kg := mustFormat(t, "kg")
	k := fixedKey
	body := k[len("kg_"):]
	replaceAt := func(i int, s string) string { return k[:i] + s + k[i+1:] }
	lastCharChanged := k[:len(k)-1] + "A"
	if k[len(k)-1] == 'A' {
		lastCharChanged = k[:len(k)-1] + "B"
	}

	tests := []struct {
		name   string
		rawKey string
		want   error
	}{
		{"empty", "", ErrKeyLength},
		{"whitespace", "   ", ErrKeyLength},
		{"prefix only", "kg_", ErrKeyLength},
		{"Bearer without token", "Bearer", ErrKeyLength},
		{"with Bearer scheme", "Bearer " + k, ErrKeyLength},
		{"wrong prefix", "xx_" + body, ErrKeyPrefix},
		{"upper-case prefix", "KG_" + body, ErrKeyPrefix},
		{"dash separator", "kg-" + body, ErrKeyPrefix},
		{"other format's key", makeKey("sk", body[:IDLen+SecretLen]), ErrKeyPrefix},
		{"longer prefix", "kgx_" + body, ErrKeyLength},
		{"length plus one", k + "0", ErrKeyLength},
		{"length minus one", k[:len(k)-1], ErrKeyLength},
		{"truncated to id", k[:len("kg_")+IDLen], ErrKeyLength},
		{"truncated half", k[:len(k)/2], ErrKeyLength},
		{"trailing LF", k + "\n", ErrKeyLength},
		{"trailing CR", k + "\r", ErrKeyLength},
		{"trailing CRLF", k + "\r\n", ErrKeyLength},
		{"leading space", " " + k, ErrKeyLength},
		{"trailing space", k + " ", ErrKeyLength},
		{"trailing NUL", k + "\x00", ErrKeyLength},
		{"NUL inside", replaceAt(10, "\x00"), ErrKeyAlphabet},
		{"CR inside", replaceAt(20, "\r"), ErrKeyAlphabet},
		{"LF as last character", replaceAt(len(k)-1, "\n"), ErrKeyAlphabet},
		{"non-UTF-8 byte", replaceAt(5, "\xff"), ErrKeyAlphabet},
		{"non-UTF-8 in checksum", replaceAt(len(k)-2, "\xc3"), ErrKeyAlphabet},
		{"two-byte UTF-8", k[:10] + "é" + k[12:], ErrKeyAlphabet},
		{"8 KB", strings.Repeat("A", 8<<10), ErrKeyLength},
		{"8 KB starting with key", k + strings.Repeat("A", 8<<10-len(k)), ErrKeyLength},
		{"dash", replaceAt(8, "-"), ErrKeyAlphabet},
		{"underscore in body", replaceAt(8, "_"), ErrKeyAlphabet},
		{"space in body", replaceAt(8, " "), ErrKeyAlphabet},
		{"plus", replaceAt(30, "+"), ErrKeyAlphabet},
		{"slash", replaceAt(30, "/"), ErrKeyAlphabet},
		{"equals padding", replaceAt(len(k)-1, "="), ErrKeyAlphabet},
		{"bad checksum", lastCharChanged, ErrKeyChecksum},
		{"checksum of another key", k[:len(k)-checksumLen] + makeKey("kg", strings.Repeat("0", 44))[len(k)-checksumLen:], ErrKeyChecksum},
		{"id swapped with secret start", "kg_" + body[IDLen:2*IDLen] + body[:IDLen] + body[2*IDLen:], ErrKeyChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := kg.Parse(tt.rawKey)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			if id != "" {
				t.Errorf("Parse returned id %q with an error", id)
			}
			if len(tt.rawKey) > 3 && strings.Contains(err.Error(), tt.rawKey) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

// TestParseRejectsEverySingleByteChange changes each byte of valid keys to
// every other byte value: every change must fail, with the error naming the
// first check that catches it.
func TestParseRejectsEverySingleByteChange(t *testing.T) {
	for _, prefix := range []string{"kg", "abcdefghij"} {
		f := mustFormat(t, prefix)
		keys := []string{makeKey(prefix, strings.Repeat("0", 44))}
		for range 3 {
			k, _ := mustGenerate(t, f)
			keys = append(keys, k)
		}
		for _, k := range keys {
			b := []byte(k)
			for i := range b {
				orig := b[i]
				for c := range 256 {
					if byte(c) == orig {
						continue
					}
					b[i] = byte(c)
					var want error
					switch {
					case i <= len(prefix): // prefix and '_'
						want = ErrKeyPrefix
					case base62Index(byte(c)) < 0:
						want = ErrKeyAlphabet
					default:
						want = ErrKeyChecksum
					}
					if _, err := f.Parse(string(b)); err != want {
						t.Fatalf("%s key, byte %d %q→%q: Parse error = %v, want %v", prefix, i, orig, byte(c), err, want)
					}
				}
				b[i] = orig
			}
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	f := mustFormat(t, DefaultPrefix)
	valid, _ := mustGenerate(t, f)
	for name, rawKey := range map[string]string{
		"valid":        valid,
		"bad checksum": valid[:len(valid)-1] + "!",
		"wrong length": valid + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { _, _ = f.Parse(rawKey) }); n != 0 {
				t.Errorf("Parse allocates %v times per call, want 0", n)
			}
		})
	}
}

func TestNewFormatAllow(t *testing.T) {
	for _, prefix := range []string{"a", "kg", "sk", "a1", "z9z9", "abcdefghij", "live0", DefaultPrefix} {
		t.Run(prefix, func(t *testing.T) {
			f, err := NewFormat(prefix)
			if err != nil {
				t.Fatalf("NewFormat(%q): %v", prefix, err)
			}
			if f.Prefix() != prefix {
				t.Errorf("Prefix() = %q", f.Prefix())
			}
		})
	}
}

func TestNewFormatDeny(t *testing.T) {
	for _, prefix := range []string{
		"", "1kg", "Kg", "KG", "kg_", "_kg", "kg-", "k g", "kg\n", "\nkg", "kg\x00", "ké",
		"abcdefghijk", // 11 characters
		"kg.", "kg/", strings.Repeat("a", 100),
	} {
		t.Run(prefix, func(t *testing.T) {
			if f, err := NewFormat(prefix); err == nil {
				t.Fatalf("NewFormat(%q) = %+v, want an error", prefix, f)
			}
		})
	}
}

func TestPattern(t *testing.T) {
	for _, prefix := range []string{"kg", "a", "abcdefghij"} {
		t.Run(prefix, func(t *testing.T) {
			f := mustFormat(t, prefix)
			re, err := regexp.Compile(pattern(f))
			if err != nil {
				t.Fatalf("pattern %q does not compile: %v", pattern(f), err)
			}
			for range 50 {
				k, _ := mustGenerate(t, f)
				if got := re.FindString("token=" + k + " more"); got != k {
					t.Fatalf("pattern found %q in text around a key, want the key", got)
				}
				if got := re.FindString(`{"key":"` + k + `"}`); got != k {
					t.Fatalf("pattern found %q in JSON, want the key", got)
				}
			}
			k, _ := mustGenerate(t, f)
			for name, text := range map[string]string{
				"truncated":           k[:len(k)-1],
				"extended":            k + "A",
				"glued to a word":     "x" + k,
				"other prefix":        "zz_" + k[len(prefix)+1:],
				"upper-case prefix":   strings.ToUpper(prefix) + k[len(prefix):],
				"dash instead of '_'": prefix + "-" + k[len(prefix)+1:],
			} {
				if re.MatchString(text) {
					t.Errorf("%s: pattern matches %q", name, text)
				}
			}
		})
	}
}

// TestGenerateCoversAlphabet checks that the 44 random characters of
// generated keys use the whole base62 alphabet with roughly equal
// frequency. The bounds are ±15% with 3000 keys (about 7 standard
// deviations), so the test is not flaky, yet a modulo bias (characters 0-7
// 25% more likely without rejection sampling) would be caught.
func TestGenerateCoversAlphabet(t *testing.T) {
	f := mustFormat(t, DefaultPrefix)
	const keys = 3000
	var counts [256]int
	for range keys {
		k, _ := mustGenerate(t, f)
		random := k[len("kg_") : len(k)-checksumLen]
		for i := 0; i < len(random); i++ {
			counts[random[i]]++
		}
	}
	expected := float64(keys*(IDLen+SecretLen)) / 62
	for c := range 256 {
		inAlphabet := strings.IndexByte(base62, byte(c)) >= 0
		switch {
		case !inAlphabet && counts[c] > 0:
			t.Errorf("character %q outside base62 generated %d times", byte(c), counts[c])
		case inAlphabet && counts[c] == 0:
			t.Errorf("character %q never generated", byte(c))
		case inAlphabet && (float64(counts[c]) < 0.85*expected || float64(counts[c]) > 1.15*expected):
			t.Errorf("character %q generated %d times, expected about %.0f", byte(c), counts[c], expected)
		}
	}
}

func TestValidID(t *testing.T) {
	allow := []string{"000000000000", "zzzzzzzzzzzz", "4VvXJ3tq9aBz", "AbCdEf012345"}
	for range 20 {
		_, id := mustGenerate(t, mustFormat(t, "kg"))
		allow = append(allow, id)
	}
	for _, id := range allow {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false, want true", id)
		}
	}
	deny := []string{
		"", "4VvXJ3tq9aB", "4VvXJ3tq9aBzz", "../../../etc", "4VvXJ3tq/aBz", "4VvXJ3tq.aBz",
		"4VvXJ3tq-aBz", "4VvXJ3tq_aBz", "4VvXJ3tq aBz", "4VvXJ3tq9aB\x00", "4VvXJ3tq9a\xc3\xa9",
		"4VvXJ3tq9aB\n", "%2e%2e%2f%2e%2e",
	}
	for _, id := range deny {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true, want false", id)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	f := mustFormat(b, DefaultPrefix)
	rawKey, _ := mustGenerate(b, f)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Parse(rawKey); err != nil {
			b.Fatal(err)
		}
	}
}
