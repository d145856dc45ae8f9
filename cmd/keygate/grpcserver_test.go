package main

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestGRPCOversizedRequest: a CheckRequest over --grpc-max-message-bytes
// gets a clean RESOURCE_EXHAUSTED (Envoy then denies: failure_mode_allow is
// false) and the server keeps answering on the same connection.
func TestGRPCOversizedRequest(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme"))
	s := serve(t, env, ring.all, "--grpc-max-message-bytes", "131072")

	big := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{
			"x-api-key": k.Key, "x-padding": strings.Repeat("a", 200<<10)}},
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.client.Check(ctx, big)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized Check: %v, want RESOURCE_EXHAUSTED", err)
	}
	if strings.Contains(err.Error(), k.Key) {
		t.Error("the error echoes the key")
	}
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Errorf("after the oversized request: %v", o)
	}
}
