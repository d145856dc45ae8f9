package bench

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// CheckMethod is the fully qualified method ghz calls.
const CheckMethod = "envoy.service.auth.v3.Authorization/Check"

// Protoset returns a serialized FileDescriptorSet holding Envoy's
// external_auth.proto and everything it imports, dependencies first, built
// from the descriptors go-control-plane compiles in (no .proto files).
func Protoset() ([]byte, error) {
	root := authv3.File_envoy_service_auth_v3_external_auth_proto
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(root)
	b, err := proto.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal protoset: %w", err)
	}
	return b, nil
}
