package envoy

import (
	"fmt"
	"slices"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// visit calls fn for every message of the setup as it stands (after a
// test's mutations): the bootstrap, with the connection manager and the
// http filters taken from s rather than from their Anys, and everything in
// other Anys unpacked.
func (s *setup) visit(fn func(proto.Message) error) error {
	skip := map[*anypb.Any]bool{}
	for _, l := range s.bootstrap.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				skip[f.GetTypedConfig()] = true
			}
		}
	}
	for _, f := range s.httpFilters {
		skip[f.GetTypedConfig()] = true
	}
	for _, root := range slices.Concat([]proto.Message{s.bootstrap, s.hcm}, s.filters) {
		if err := walk(root.ProtoReflect(), skip, fn); err != nil {
			return err
		}
	}
	return nil
}

// walk calls fn for m and every message below it, unpacking Anys not in
// skip.
func walk(m protoreflect.Message, skip map[*anypb.Any]bool, fn func(proto.Message) error) error {
	if err := fn(m.Interface()); err != nil {
		return err
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		if skip[a] {
			return nil
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
		}
		return walk(inner.ProtoReflect(), skip, fn)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = walk(v.List().Get(i).Message(), skip, fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = walk(mv.Message(), skip, fn)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = walk(v.Message(), skip, fn)
		}
		return err == nil
	})
	return err
}

// listenerOf returns the only listener, for mutants.
func listenerOf(s *setup) *listenerv3.Listener {
	return s.bootstrap.GetStaticResources().GetListeners()[0]
}
