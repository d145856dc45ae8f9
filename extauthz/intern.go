package extauthz

import (
	"runtime"
	"sync"
	"weak"
)

// interner shares one immutable value among every cache entry that needs an
// equal one (the tenant header of all of a tenant's keys, say), so a cached
// key costs little more than its id. Values are held weakly: once no entry
// uses a value, the garbage collector frees it and its map slot is dropped.
type interner[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]weak.Pointer[V]
}

func newInterner[K comparable, V any]() *interner[K, V] {
	return &interner[K, V]{m: map[K]weak.Pointer[V]{}}
}

// get returns the shared value for k, making it with mk if there is none.
// Callers must never modify a value they got from get.
func (in *interner[K, V]) get(k K, mk func() *V) *V {
	in.mu.Lock()
	defer in.mu.Unlock()
	if v := in.m[k].Value(); v != nil {
		return v
	}
	v := mk()
	in.m[k] = weak.Make(v)
	runtime.AddCleanup(v, in.drop, k)
	return v
}

// drop removes k's slot if its value was collected (a newer value for k
// may have replaced it meanwhile).
func (in *interner[K, V]) drop(k K) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if wp, ok := in.m[k]; ok && wp.Value() == nil {
		delete(in.m, k)
	}
}
