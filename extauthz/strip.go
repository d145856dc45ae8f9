package extauthz

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// stripper knows every header name an allow may have to remove because the
// key being allowed does not set it: keygate's identity headers, the names
// configured in Config.StripHeaders, and every header name of every key
// record this server has loaded. A client must not pass its own "x-plan:
// gold" upstream with a key whose record sets no x-plan. The names are
// removed whether or not the proxy showed the header to keygate (Envoy's
// allowed_headers and Istio's HTTP provider show only some).
//
// The names only grow. Each allowParts keeps its removal lists for the
// current set of names; keys that set the same headers share one list.
type stripper struct {
	mu    sync.Mutex
	state atomic.Pointer[stripState]
	cred  [4][]string // credential headers by fromKeyHeader|fromAuthHeader bits
}

// stripState is one immutable set of names, with the lists built for it.
type stripState struct {
	names []string // sorted
	lists map[string]*stripList
}

// stripList is what one allow removes, by which credential headers carried
// the key (cred bits): those, then every name the key does not set.
type stripList struct {
	state  *stripState
	byFrom [4][]string
}

// identityHeaders are keygate's own headers; an allow sets some of them and
// removes the others.
var identityHeaders = []string{headerKeyID, headerTenant, headerScopes, headerReason}

func newStripper(cfg *Config) *stripper {
	st := &stripper{cred: credentialRemovals(cfg)}
	names := append(slices.Clone(identityHeaders), cfg.StripHeaders...)
	slices.Sort(names)
	st.state.Store(&stripState{names: slices.Compact(names), lists: map[string]*stripList{}})
	return st
}

// add makes names part of the set (a record carrying them was loaded).
func (st *stripper) add(names []string) {
	cur := st.state.Load()
	if !slices.ContainsFunc(names, func(n string) bool { _, found := slices.BinarySearch(cur.names, n); return !found }) {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	cur = st.state.Load()
	next := append(slices.Clone(cur.names), names...)
	slices.Sort(next)
	next = slices.Compact(next)
	if len(next) != len(cur.names) {
		st.state.Store(&stripState{names: next, lists: map[string]*stripList{}})
	}
}

// has reports whether name is in the set.
func (st *stripper) has(name string) bool {
	_, found := slices.BinarySearch(st.state.Load().names, name)
	return found
}

// removals returns what an allow of p removes when the key came in the
// credential headers from: one atomic load while the set is unchanged.
func (st *stripper) removals(p *allowParts, from uint8) []string {
	l := p.strip.Load()
	if l == nil || l.state != st.state.Load() {
		l = st.list(p)
		p.strip.Store(l)
	}
	return l.byFrom[from]
}

// list builds (or finds the shared) removal lists for p's key.
func (st *stripper) list(p *allowParts) *stripList {
	st.mu.Lock()
	defer st.mu.Unlock()
	state := st.state.Load()
	var keep []string
	for _, name := range state.names {
		if !p.sets(name) {
			keep = append(keep, name)
		}
	}
	sig := strings.Join(keep, ",")
	if l, ok := state.lists[sig]; ok {
		return l
	}
	l := &stripList{state: state}
	for from := range l.byFrom {
		l.byFrom[from] = append(slices.Clip(st.cred[from]), keep...)
	}
	state.lists[sig] = l
	return l
}

// collides reports whether a header name with underscores reads, to a CGI
// or FastCGI upstream (which turns "-" into "_"), as a header keygate reads
// or sets: "x_api_key" beside a removed "x-api-key", or "x_plan" beside a
// record's "x-plan". names are lower case.
func (st *stripper) collides(cfg *Config, names []string) bool {
	for _, name := range names {
		dashed := strings.ReplaceAll(name, "_", "-")
		if dashed == cfg.KeyHeader || dashed == cfg.AuthHeader || strings.HasPrefix(dashed, identityPfx) || st.has(dashed) {
			return true
		}
	}
	return false
}

// credentialRemovals precomputes the credential headers to remove for each
// combination of credential headers that carried the key.
func credentialRemovals(cfg *Config) [4][]string {
	var r [4][]string
	for bits := range uint8(4) {
		if bits&fromKeyHeader != 0 {
			r[bits] = append(r[bits], cfg.KeyHeader)
		}
		if bits&fromAuthHeader != 0 {
			r[bits] = append(r[bits], cfg.AuthHeader)
		}
	}
	return r
}
