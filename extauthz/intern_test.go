package extauthz

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

func TestInternerSharesAndForgets(t *testing.T) {
	in := newInterner[string, string]()
	made := 0
	mk := func() *string { made++; s := "v"; return &s }
	a, b := in.get("k", mk), in.get("k", mk)
	if a != b || made != 1 {
		t.Fatalf("equal keys: got %p and %p after %d makes, want one shared value", a, b, made)
	}
	runtime.KeepAlive(a)
	a, b = nil, nil
	// Once nothing uses the value, the collector frees it and the slot goes.
	deadline := time.Now().Add(5 * time.Second)
	for in.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("interner still holds %d slots after the values became unreachable", in.len())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if c := in.get("k", mk); c == nil || made != 2 {
		t.Errorf("after collection: got %v after %d makes, want a fresh value", c, made)
	}
}

// Keys of one tenant share their tenant and scopes pieces; the key id is
// each key's own.
func TestAllowPartsShared(t *testing.T) {
	e := newEnv(t)
	k1, id1 := e.newKey(nil)
	k2, id2 := e.newKey(nil)
	for _, k := range []string{k1, k2} {
		mustOutcome(t, e, k, "allowed")
	}
	p1, _ := e.srv.cache.found.Peek(id1)
	p2, _ := e.srv.cache.found.Peek(id2)
	a, b := p1.allow, p2.allow
	if a.tenant != b.tenant || a.scopes != b.scopes || a.headers[0] != b.headers[0] {
		t.Error("tenant/scopes pieces are not shared between keys of one tenant")
	}
	if string(a.headersWire) == string(b.headersWire) || string(a.metadataWire) == string(b.metadataWire) {
		t.Error("key id pieces are shared between different keys")
	}
}

// BenchmarkCacheGetParallel is a cache hit (LRU lookup + expiry check) under
// parallel load, without the rest of Check.
func BenchmarkCacheGetParallel(b *testing.B) {
	e := benchEnv(b)
	ids := make([]string, 1024)
	for i := range ids {
		_, ids[i] = e.newKey(nil)
		if _, _, r := e.srv.cache.get(context.Background(), ids[i]); r != policy.Allowed {
			b.Fatalf("fill %s: %v", fmt.Sprint(i), r)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, i := context.Background(), 0
		for pb.Next() {
			if _, _, r := e.srv.cache.get(ctx, ids[i%len(ids)]); r != policy.Allowed {
				b.Fatal(r)
			}
			i++
		}
	})
}

// len is the number of live slots, of in.
func (in *interner[K, V]) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.m)
}
