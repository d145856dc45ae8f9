package main

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// On SIGTERM (context cancelled) keygate reports NOT_SERVING at once, keeps
// answering Checks for --shutdown-delay so Envoy can drain it, then stops.
func TestGracefulShutdown(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	k := ring.add(createKey(t, env, "--tenant", "acme"))
	s := serve(t, env, ring.all, "--shutdown-delay", "1s")
	hc := healthpb.NewHealthClient(s.conn)

	s.cancel()
	eventually(t, 5*time.Second, "health NOT_SERVING after SIGTERM", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if o := s.decide(t, k.Key, checkFlags{}); o.status != 200 {
		t.Errorf("Check while draining: %v, want allowed", o)
	}
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup's check
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after the shutdown delay")
	}
}

// gRPC reflection lists the Authorization and health services (for grpcurl).
func TestReflection(t *testing.T) {
	var ring keyring
	env := envMap{"KEYGATE_STORE": "file:" + t.TempDir() + "/keys.yaml"}
	createKey(t, env, "--tenant", "acme")
	s := serve(t, env, ring.all)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		got[svc.GetName()] = true
	}
	for _, want := range []string{"envoy.service.auth.v3.Authorization", "grpc.health.v1.Health"} {
		if !got[want] {
			t.Errorf("reflection does not list %s (got %v)", want, got)
		}
	}
}
