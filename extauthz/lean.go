package extauthz

import (
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/keygate/keygate/policy"
)

// The lean decoder reads, from a CheckRequest's wire bytes, exactly what
// readRequest reads from the decoded message, and skips everything else
// without allocating: decoding the whole request with the generated code
// cost most of a Check (about 95 allocations for a 0.5–0.75 KB request).
//
// It follows proto3's decoding rules for the fields it reads, so that its
// answer is the full decoder's: a message field that occurs more than once
// is merged (its fields, in order); a scalar field that occurs more than
// once keeps the last value; a map entry repeated for one key keeps the
// last; setting a member of a oneof clears the others. Anything it cannot
// read with certainty — a malformed tag, length or varint, a group, a used
// field with an unexpected wire type, a string that is not UTF-8 — makes it
// give up (ok false), and the caller decodes the request fully instead:
// never a guess. FuzzLeanDecoder compares the two on arbitrary bytes.
//
// Field numbers, from envoy/service/auth/v3 and envoy/config/core/v3:
const (
	fCheckAttributes = 1 // CheckRequest.attributes: AttributeContext

	fAttrSource     = 1  // AttributeContext.source: Peer
	fAttrRequest    = 4  // AttributeContext.request: Request
	fAttrContextExt = 10 // AttributeContext.context_extensions: map<string, string>

	fPeerAddress = 1 // Peer.address: core.Address

	fAddrSocket   = 1 // Address.socket_address (oneof address)
	fAddrPipe     = 2 // Address.pipe (oneof address)
	fAddrInternal = 3 // Address.envoy_internal_address (oneof address)

	fSocketAddress = 2 // SocketAddress.address: string

	fRequestHTTP = 2 // Request.http: HttpRequest

	fHTTPMethod    = 2  // HttpRequest.method
	fHTTPHeaders   = 3  // HttpRequest.headers: map<string, string>
	fHTTPPath      = 4  // HttpRequest.path
	fHTTPHost      = 5  // HttpRequest.host
	fHTTPHeaderMap = 13 // HttpRequest.header_map: core.HeaderMap

	fHeaderMapHeaders = 1 // HeaderMap.headers: repeated HeaderValue

	fHeaderValueKey      = 1 // HeaderValue.key
	fHeaderValueValue    = 2 // HeaderValue.value
	fHeaderValueRawValue = 3 // HeaderValue.raw_value: bytes

	fMapKey   = 1 // a map entry's key
	fMapValue = 2 // a map entry's value
)

// leanFields is what the walk collects before readRequest's order is
// applied.
type leanFields struct {
	host, method, path, scopes, source string
	sourceSet                          bool // the address oneof's case is socket_address
	headers                            []leanPair
	headerMap                          []leanPair // value: raw_value if set, else value
}

type leanPair struct{ k, v string }

// decodeLean decodes b (which the returned incoming aliases: b must not be
// changed while it is used) as readRequest would decode the message.
func decodeLean(b []byte, cfg *Config) (in incoming, ok bool) {
	var f leanFields
	// Room for a typical request's headers on the stack: appending to a
	// nil slice cost five allocations for fifteen headers.
	var room [24]leanPair
	f.headerMap = room[:0]
	if !walk(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num == fCheckAttributes {
			return typ == protowire.BytesType && f.attributes(v)
		}
		return true
	}) {
		return incoming{}, false
	}
	in = incoming{host: f.host, method: f.method, path: f.path, scopeList: f.scopes}
	if f.sourceSet {
		in.source = f.source
	}
	for _, p := range f.headers {
		in.header(cfg, p.k, p.v)
	}
	for _, p := range f.headerMap {
		if in.wants(cfg, p.k) {
			in.header(cfg, p.k, p.v)
		}
	}
	if in.reason == policy.Allowed && in.rawKey == "" {
		in.reason = policy.MissingKey
	}
	return in, true
}

// walk calls field for each field of the message in b, with its value: a
// varint's or fixed field's bytes are not needed here, so v is the
// length-delimited content and nil otherwise. It is false for malformed
// input, a group, or when field says so.
func walk(b []byte, field func(num protowire.Number, typ protowire.Type, v []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.VarintType:
			_, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			_, n = protowire.ConsumeFixed32(b)
		case protowire.Fixed64Type:
			_, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default: // groups (deprecated, never sent by Envoy) and unknown types
			return false
		}
		if n < 0 || !field(num, typ, v) {
			return false
		}
		b = b[n:]
	}
	return true
}

// str is v as a string without a copy (it aliases the request's bytes),
// or false if it is not UTF-8, which proto3 requires of a string field.
func str(v []byte) (string, bool) {
	if len(v) == 0 {
		return "", true
	}
	s := unsafe.String(&v[0], len(v))
	return s, utf8.ValidString(s)
}

// message wants a length-delimited field: the wrong wire type for a field
// keygate reads is a give-up (the full decoder would reject it too).
func message(typ protowire.Type) bool { return typ == protowire.BytesType }

func (f *leanFields) attributes(b []byte) bool {
	return walk(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch num {
		case fAttrSource:
			return message(typ) && f.peer(v)
		case fAttrRequest:
			return message(typ) && walk(v, func(num protowire.Number, typ protowire.Type, v []byte) bool {
				if num == fRequestHTTP {
					return message(typ) && f.http(v)
				}
				return true
			})
		case fAttrContextExt:
			if !message(typ) {
				return false
			}
			k, val, ok := mapEntry(v)
			if ok && k == ScopesExtension {
				f.scopes = val
			}
			return ok
		}
		return true
	})
}

func (f *leanFields) peer(b []byte) bool {
	return walk(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != fPeerAddress {
			return true
		}
		return message(typ) && walk(v, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			switch num {
			case fAddrSocket:
				if !message(typ) {
					return false
				}
				if !f.sourceSet { // a oneof member set anew starts empty
					f.source, f.sourceSet = "", true
				}
				return walk(v, func(num protowire.Number, typ protowire.Type, v []byte) bool {
					if num != fSocketAddress {
						return true
					}
					s, ok := str(v)
					if ok && message(typ) {
						f.source = s
					}
					return ok && message(typ)
				})
			case fAddrPipe, fAddrInternal:
				if !message(typ) {
					return false
				}
				f.sourceSet = false // another member of the oneof: no socket address
			}
			return true
		})
	})
}

func (f *leanFields) http(b []byte) bool {
	return walk(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		var dst *string
		switch num {
		case fHTTPMethod:
			dst = &f.method
		case fHTTPPath:
			dst = &f.path
		case fHTTPHost:
			dst = &f.host
		case fHTTPHeaders:
			if !message(typ) {
				return false
			}
			k, val, ok := mapEntry(v)
			if ok {
				f.headers = setPair(f.headers, k, val)
			}
			return ok
		case fHTTPHeaderMap:
			return message(typ) && f.headerMapEntries(v)
		default:
			return true
		}
		if !message(typ) {
			return false
		}
		s, ok := str(v)
		*dst = s
		return ok
	})
}

func (f *leanFields) headerMapEntries(b []byte) bool {
	return walk(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != fHeaderMapHeaders {
			return true
		}
		if !message(typ) {
			return false
		}
		var key, value string
		var raw []byte
		ok := walk(v, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			switch num {
			case fHeaderValueKey, fHeaderValueValue:
				s, ok := str(v)
				if num == fHeaderValueKey {
					key = s
				} else {
					value = s
				}
				return ok && message(typ)
			case fHeaderValueRawValue:
				raw = v // bytes: no UTF-8 rule
				return message(typ)
			}
			return true
		})
		if !ok {
			return false
		}
		if len(raw) > 0 {
			value = unsafe.String(&raw[0], len(raw))
		}
		f.headerMap = append(f.headerMap, leanPair{key, value})
		return true
	})
}

// mapEntry decodes a map<string, string> entry; a missing key or value is
// "".
func mapEntry(b []byte) (k, v string, ok bool) {
	ok = walk(b, func(num protowire.Number, typ protowire.Type, val []byte) bool {
		switch num {
		case fMapKey, fMapValue:
			s, ok := str(val)
			if num == fMapKey {
				k = s
			} else {
				v = s
			}
			return ok && message(typ)
		}
		return true
	})
	return k, v, ok
}

// setPair sets k to v in pairs, keeping its first place (a map's last
// value for a key wins; the order of a map does not matter to
// readRequest).
func setPair(pairs []leanPair, k, v string) []leanPair {
	for i := range pairs {
		if pairs[i].k == k {
			pairs[i].v = v
			return pairs
		}
	}
	return append(pairs, leanPair{k, v})
}
