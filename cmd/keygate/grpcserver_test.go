package main

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestGRPCOversizedRequest: a CheckRequest over --max-request-bytes gets
// an explicit 413 deny (never a gRPC error, which Envoy would turn into an
// allow with failure_mode_allow), and the server keeps answering on the
// same connection. The old flag name still works.
func TestGRPCOversizedRequest(t *testing.T) {
	for _, flag := range []string{"--max-request-bytes", "--grpc-max-message-bytes"} {
		t.Run(flag, func(t *testing.T) {
			var ring keyring
			env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
			k := ring.add(createKey(t, env, "--tenant", "acme"))
			s := serve(t, env, ring.all, flag, "131072")

			big := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{
					"x-api-key": k.Key, "x-padding": strings.Repeat("a", 200<<10)}},
			}}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := s.client.Check(ctx, big)
			if err != nil {
				t.Fatalf("oversized Check: %v, want a deny", err)
			}
			if resp.GetDeniedResponse().GetStatus().GetCode() != 413 || resp.GetStatus().GetMessage() != "request_too_large" {
				t.Fatalf("oversized Check: %v, want 413 request_too_large", resp)
			}
			if strings.Contains(resp.String(), k.Key) {
				t.Error("the answer echoes the key")
			}
			if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
				t.Errorf("after the oversized request: %v", o)
			}
		})
	}
}
