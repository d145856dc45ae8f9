package envoy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Every type named by an "@type" in the YAML files must be registered in
	// protoregistry.GlobalTypes, which protojson and anypb.UnmarshalNew use
	// to resolve Any. Most are imported by the tests that inspect them; these
	// are only resolved. A new extension in a config needs its package
	// imported, or loading fails with "unable to resolve".
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// load parses an Envoy bootstrap written in YAML as strictly as Envoy does:
// unknown fields, bad enum values and unresolvable "@type"s are errors, and
// every message, including those packed in Any, must pass its validation
// rules.
func load(doc []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("protojson: %w", err)
	}
	if err := validate(&b); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return &b, nil
}

// validate runs m's validation rules, then those of every message packed in
// an Any below it. The generated ValidateAll treats an Any as opaque bytes,
// so on its own it would accept, say, an ExtAuthz with no grpc_service.
func validate(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	return forEachAny(m.ProtoReflect(), func(a *anypb.Any) error {
		inner, err := a.UnmarshalNew()
		if err == nil {
			err = validate(inner)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
		}
		return nil
	})
}

// forEachAny calls fn for each Any in m's set fields, at any depth, without
// looking inside the Anys themselves.
func forEachAny(m protoreflect.Message, fn func(*anypb.Any) error) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		return fn(a)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = forEachAny(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = forEachAny(mv.Message(), fn)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = forEachAny(v.Message(), fn)
		}
		return err == nil
	})
	return err
}

// unpack returns the message in a, which must be of type T.
func unpack[T proto.Message](a *anypb.Any) (T, error) {
	var zero T
	m, err := a.UnmarshalNew()
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, fmt.Errorf("got %s, want %T", a.GetTypeUrl(), zero)
	}
	return t, nil
}

// A policy is one thing a keygate reviewer checks in a config. check returns
// nil if the setup follows it.
type policy struct {
	name  string
	check func(*setup) error
}

// loadSetup loads doc and unpacks the parts keygate depends on.
func loadSetup(doc []byte) (*setup, error) {
	b, err := load(doc)
	if err != nil {
		return nil, err
	}
	return newSetup(b)
}

// checkSetup returns every policy s breaks.
func checkSetup(s *setup, ps []policy) error {
	var errs []error
	for _, p := range ps {
		if err := p.check(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	doc, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// testPolicies loads file and runs each policy as a subtest.
func testPolicies(t *testing.T, file string, ps []policy) {
	s, err := loadSetup(readFile(t, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, p := range ps {
		t.Run(p.name, func(t *testing.T) {
			if err := p.check(s); err != nil {
				t.Error(err)
				if promise, ok := policyREADME[p.name]; ok {
					t.Errorf("README.md promises: %s", promise)
				}
			}
		})
	}
}

// An edit replaces old, which must occur exactly once in the file, with new;
// the edited config must then be rejected with an error mentioning wantErr.
type edit struct {
	name, old, new string
	wantErr        string
}

// testEdits proves that ps (and loading) catch each edit of file.
func testEdits(t *testing.T, file string, ps []policy, edits []edit) {
	doc := string(readFile(t, file))
	for _, tc := range edits {
		t.Run(tc.name, func(t *testing.T) {
			if n := strings.Count(doc, tc.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want once", tc.old, n, file)
			}
			s, err := loadSetup([]byte(strings.Replace(doc, tc.old, tc.new, 1)))
			if err == nil {
				err = checkSetup(s, ps)
			}
			wantRejected(t, err, tc.wantErr)
		})
	}
}

// A mutation changes the loaded config in a way text edits cannot express
// simply (reordering filters, say); the policies must then fail.
type mutation struct {
	name    string
	mutate  func(*testing.T, *setup)
	wantErr string
}

// testMutations proves that ps catch each mutation of file's setup.
func testMutations(t *testing.T, file string, ps []policy, muts []mutation) {
	doc := readFile(t, file)
	for _, tc := range muts {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadSetup(doc)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(t, s)
			wantRejected(t, checkSetup(s, ps), tc.wantErr)
		})
	}
}

func wantRejected(t *testing.T, err error, wantErr string) {
	t.Helper()
	if err == nil {
		t.Fatal("config accepted")
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error does not mention %q: %v", wantErr, err)
	}
	t.Logf("rejected: %v", err)
}
